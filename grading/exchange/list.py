"""`nbgrader list` and the Assignments panel's lists, from the grading service.

Returns exactly the shapes of nbgrader's default `ExchangeList` (which the Assignments panel
renders): released/fetched assignments as a flat list; submissions grouped per (course, student,
assignment) with per-notebook feedback flags, the local feedback path and whether the service has
newer feedback than the local copy. `--remove` unreleases (submissions are never deleted).
"""

from __future__ import annotations

import glob
import hashlib
import os
from urllib.parse import quote

from nbgrader.exchange.abc import ExchangeList as ABCList

from .base import CoursehubExchange


def _sha256(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


class ExchangeList(CoursehubExchange, ABCList):
    def init_src(self) -> None:
        pass

    def init_dest(self) -> None:
        pass

    def copy_files(self) -> None:
        pass

    def remote(self, *parts: str) -> str:
        return "/".join([self.service_url.rstrip("/"), *parts])

    # --- released / fetched ---------------------------------------------------------------------
    def released(self) -> list[dict]:
        cd = self.coursedir
        params = {"course": cd.course_id} if cd.course_id else {}
        if cd.assignment_id and cd.assignment_id != "*":
            params["assignment"] = cd.assignment_id
        rows = self.api("GET", "releases", params=params, retry=True).json()
        out = []
        for row in rows:
            info = {"course_id": row["course_id"], "assignment_id": row["assignment_id"]}
            local = self.local_dir(row["course_id"], row["assignment_id"])
            if os.path.exists(local):
                info["status"] = "fetched"
                info["path"] = os.path.abspath(local)
                notebooks = sorted(glob.glob(os.path.join(info["path"], "*.ipynb")))
                info["notebooks"] = [
                    {"notebook_id": os.path.splitext(os.path.basename(nb))[0], "path": os.path.abspath(nb)}
                    for nb in notebooks
                ]
            else:
                info["status"] = "released"
                info["path"] = self.remote(row["course_id"], row["assignment_id"])
                info["notebooks"] = [
                    {"notebook_id": nb, "path": self.remote(row["course_id"], row["assignment_id"], f"{nb}.ipynb")}
                    for nb in row["notebooks"]
                ]
            if self.remove:
                info["status"] = "removed"
            out.append(info)
        return out

    def deadline(self) -> dict | None:
        """The signed-in user's deadline and the course's late policy for the assignment, with the
        service's current time (None: no deadline, or a service that does not say)."""
        cd = self.coursedir
        rows = self.api("GET", "releases", params={"course": cd.course_id, "assignment": cd.assignment_id}).json()
        return next((r.get("deadline") for r in rows if r["assignment_id"] == cd.assignment_id), None)

    # --- submitted --------------------------------------------------------------------------------
    def submitted(self) -> list[dict]:
        cd = self.coursedir
        params = {}
        if cd.course_id:
            params["course"] = cd.course_id
        if cd.assignment_id and cd.assignment_id != "*":
            params["assignment"] = cd.assignment_id
        if self.cached:
            params["mine"] = "1"  # the student's own submissions: what nbgrader keeps in its local cache
        elif cd.student_id and cd.student_id != "*":
            params["student"] = cd.student_id
        rows = self.api("GET", "submissions", params=params, retry=True).json()
        groups: dict[tuple, list[dict]] = {}
        for row in rows:
            info = self.submission_info(row)
            groups.setdefault((row["course_id"], row["student_id"], row["assignment_id"]), []).append(info)
        out = []
        for key in sorted(groups):
            subs = sorted(groups[key], key=lambda x: x["timestamp"])
            out.append({"course_id": key[0], "student_id": key[1], "assignment_id": key[2],
                        "status": subs[0]["status"], "submissions": subs})
        return out

    def submission_info(self, row: dict) -> dict:
        course_id, assignment_id, timestamp = row["course_id"], row["assignment_id"], row["timestamp"]
        assignment_dir = self.local_dir(course_id, assignment_id)
        info = {
            "course_id": course_id, "student_id": row["student_id"], "assignment_id": assignment_id,
            "timestamp": timestamp, "status": "submitted",
            "path": self.remote(course_id, assignment_id, "submissions", str(row["id"])),
        }
        exchange_feedback = row.get("feedback", {})
        notebooks = []
        for nb in row["notebooks"]:
            local = os.path.join(assignment_dir, "feedback", timestamp, f"{nb}.html")
            has_local = os.path.isfile(local)
            remote_sha = exchange_feedback.get(nb)
            notebooks.append({
                "notebook_id": nb,
                "path": self.remote(course_id, assignment_id, "submissions", str(row["id"]), f"{nb}.ipynb"),
                "has_local_feedback": has_local,
                "has_exchange_feedback": remote_sha is not None,
                "local_feedback_path": local if has_local else None,
                "feedback_updated": bool(has_local and remote_sha and _sha256(local) != remote_sha),
            })
        info["notebooks"] = notebooks
        if notebooks:
            info["has_local_feedback"] = all(nb["has_local_feedback"] for nb in notebooks)
            info["has_exchange_feedback"] = all(nb["has_exchange_feedback"] for nb in notebooks)
            info["feedback_updated"] = any(nb["feedback_updated"] for nb in notebooks)
        else:
            info["has_local_feedback"] = info["has_exchange_feedback"] = info["feedback_updated"] = False
        if info["has_local_feedback"]:
            full = os.path.abspath(assignment_dir)
            base = full if os.path.exists(full) else assignment_dir
            info["local_feedback_path"] = os.path.join(base, "feedback", timestamp)
        else:
            info["local_feedback_path"] = None
        return info

    # --- nbgrader's entry points ------------------------------------------------------------------
    def list_files(self) -> list[dict]:
        if self.inbound or self.cached:
            assignments = self.submitted()
            self.log.info("Submitted assignments:")
            for a in assignments:
                for s in a["submissions"]:
                    self.log.info(_format_inbound(s))
        else:
            assignments = self.released()
            self.log.info("Released assignments:")
            for a in assignments:
                self.log.info(_format_outbound(a))
        return assignments

    def remove_files(self) -> list[dict]:
        if self.inbound or self.cached:
            self.fail("Submissions cannot be removed: the grading service keeps every submission.")
        course_id = self.require_course()
        assignments = self.released()
        self.log.info("Removing released assignments:")
        for a in assignments:
            self.log.info(_format_outbound(a))
        for a in assignments:
            self.api("DELETE", f"courses/{quote(course_id, safe='')}/assignments/"
                               f"{quote(a['assignment_id'], safe='')}/release", retry=True)
        return assignments


def _format_inbound(info: dict) -> str:
    msg = "{course_id} {student_id} {assignment_id} {timestamp}".format(**info)
    if info["has_local_feedback"] and not info["feedback_updated"]:
        msg += " (feedback already fetched)"
    elif info["has_exchange_feedback"]:
        msg += " (feedback ready to be fetched)"
    else:
        msg += " (no feedback available)"
    return msg


def _format_outbound(info: dict) -> str:
    msg = "{course_id} {assignment_id}".format(**info)
    if info["status"] == "fetched":
        msg += " (already downloaded)"
    return msg
