"""LTI Advantage services: grades to the LMS (AGS) through a durable outbox, rosters from NRPS.

- `records`: what the client needs to know about a platform and a launch (`LaunchServices`).
- `guard`: service URLs must be on the registered platform's host.
- `token`: OAuth2 client-credentials tokens with a signed client assertion, cached.
- `ags`, `nrps`: the HTTP clients.
- `outbox`: the score outbox (tables, enqueue with newest-wins, the sender with retries).
- `roster`: NRPS roster sync into course groups and the gradebook.
"""
