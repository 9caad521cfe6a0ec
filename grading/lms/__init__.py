"""LTI Advantage services: grades to the LMS (AGS) through a durable outbox, rosters from NRPS.

- `records`: what the client needs to know about a platform and a launch (`LaunchServices`).
- `guard`: service URLs must be on the registered platform's host.
- `tokens`: OAuth2 client-credentials tokens with a signed client assertion, cached.
- `services`: the AGS and NRPS HTTP clients.
- `lineitems`: one line item per assignment and LMS context (claimed in the database before any
  POST), label and points from course.yaml, updated by PUT.
- `outbox`: the score outbox (tables, enqueue with newest-wins, the sender with retries).
- `progress`, `gradesync`: submissions and gradebook grades into the outbox with honest progress.
- `roster`: NRPS roster sync into course groups (leavers out: staff at once, students after a
  grace period) and the gradebook; `hubgroups`: the hub API calls for it.
- `names`: names, emails and LMS ids from launches and rosters into nbgrader's Student table.
- `runtime`: the grading service's timers and the shared sender.
"""
