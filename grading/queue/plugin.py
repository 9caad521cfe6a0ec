"""Grading-service plugin: submissions an instructor collects become autograde jobs.

Listed in `grading.plugins` (on by default). After each collect the service calls the hook with
the collected submissions; each becomes a job in the durable queue (a resubmission supersedes the
waiting job of the same student). Queue workers (`python -m coursehub.grading.queue.worker`; on the
local platform a hub-managed service, at scale a Deployment) grade them into the course's nbgrader
gradebook. The worker reads the submission from the course directory the instructor collected into;
if the collecting client has not finished writing it, the job fails and is retried with backoff.
"""

from __future__ import annotations

import logging
from typing import Any

from coursehub.platform.settings import load_settings

from ..service.coursedirs import course_dir
from .api import JobQueue

log = logging.getLogger("coursehub.grading.autograde")


def setup(plugins: Any) -> None:
    settings = load_settings()
    queue = JobQueue(settings.grading_db_url(), max_attempts=settings.grading.max_attempts)

    @plugins.after_collect
    def enqueue_collected(event: Any, core: Any) -> None:
        folder = str(course_dir(settings, event.course_id))
        for sub in event.submissions:
            job_id = queue.enqueue(
                event.course_id, event.assignment_id, sub["student_id"],
                payload={"course_dir": folder, "submission_id": sub["id"], "sha256": sub["sha256"]},
            )
            log.info("autograde job %s queued: %s/%s submission %s", job_id, event.course_id,
                     event.assignment_id, sub["id"])
