"""The built-in LMS launch page for trying coursehub on one machine (local mode, loopback only).

It plays the LMS's part of a real LTI 1.3 launch: login initiation, the OIDC authentication
response posted to the hub with an id_token signed by its own key, and its JWKS. The hub treats it
as the registered platform `local-lms`, validating its launches like any other LMS's.
"""
