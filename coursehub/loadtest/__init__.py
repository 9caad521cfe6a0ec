"""`coursehub loadtest`: lecture starts and deadline rushes against a running coursehub.

Small modules, one job each: `platform` (the test LMS that signs launches), `hubclient` (a
student's browser-like session), `kernel` (a kernel answering `1+1`), `launches` and
`submissions` (the two scenarios), `runner` (open-loop arrivals, progress), `report` (figures),
`cli` (arguments, caps and the target guard).
"""
