"""Instant feedback on submit: the visible tests of an assignment, run at once in the sandbox.

Off by default; a course turns it on per assignment (`assignments[].instant_feedback: true` in
course.yaml). After the service has stored a submission durably, `plugin.py` hands it to a small
bounded pool (`runner.py`) that grades it with the ordinary executor against a copy of the
assignment's source index whose hidden test regions are removed (`visible.py`): hidden tests never
enter the sandbox, so neither their result nor their source can reach the student. The per-test
result is kept per submission id (`store.py`) and served to its student (`handlers.py`); it is
never written to the gradebook: the grade still comes from the full autograde after collect.
"""
