"""LTI 1.3 for coursehub: registrations, launch validation, identities, course mapping and services.

The hub's authenticator (`coursehub.platform.auth.CoursehubAuthenticator`) builds on
jupyterhub-ltiauthenticator's LTI13 classes and uses these modules for what upstream leaves out:
several platforms, a shared JWKS cache, server-side single-use nonces, per-launch state cookies,
identities from (issuer, sub), course groups and the AGS/NRPS endpoints of each launch.
Other areas use `coursehub.platform.lti.services` (tool key, stored services per user and course).
"""
