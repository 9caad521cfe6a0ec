"""Grading-service plugin `autograde-queue`: submissions an instructor collects become autograde jobs.

Named in `grading.plugins` (on by default; the `coursehub.grading_plugins` entry point
`autograde-queue`). After each collect the service calls the hook with the collected submissions;
each becomes a job in the durable queue (`context.queue`, one transaction per batch; a resubmission supersedes the waiting job
of the same student). A job names the course directory (source, gradebook, nbgrader config) and the
stored submission (`submission_id`, `sha256`). Queue workers (`python -m
coursehub.grading.queue.worker`; on the local platform a hub-managed service, at scale a Deployment)
grade that stored submission, checksum verified, into the course's nbgrader gradebook; the
`submitted/` folder the instructor collected into is not what is graded (see submission.py).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("coursehub.grading.autograde")


def setup(context: Any) -> None:  # noqa: ANN401 - coursehub.grading.service.plugins.PluginContext
    queue = context.queue

    @context.after_collect
    def enqueue_collected(event: Any, core: Any) -> None:
        folder = str(context.course_dir(event.course_id))
        subs = list(event.submissions)
        ids = queue.enqueue_many(event.course_id, event.assignment_id, [
            (sub["student_id"], {"course_dir": folder, "submission_id": sub["id"], "sha256": sub["sha256"]})
            for sub in subs])  # one transaction for the collect's batch
        for job_id, sub in zip(ids, subs, strict=True):
            log.info("autograde job %s queued: %s/%s submission %s", job_id, event.course_id,
                     event.assignment_id, sub["id"])
