"""A grading-service plugin for tests: records after-collect events in $HOOK_LOG (JSON lines)."""

from __future__ import annotations

import json
import os


def setup(plugins) -> None:  # noqa: ANN001
    @plugins.after_collect
    def record(event, core) -> None:  # noqa: ANN001
        with open(os.environ["HOOK_LOG"], "a") as fh:
            for sub in event.submissions:
                files = core.submission_files(sub)
                fh.write(json.dumps({"course": event.course_id, "assignment": event.assignment_id,
                                     "actor": event.actor, "student": sub["student_id"], "id": sub["id"],
                                     "files": sorted(files)}) + "\n")
