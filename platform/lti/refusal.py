"""Why a launch was refused: an HTTP status, a reason code for the audit log, words for the person."""

from __future__ import annotations


class LaunchRefused(Exception):
    """A launch we will not honour. No session is created; the audit log records `reason`."""

    def __init__(self, reason: str, message: str, status: int = 400, *, page: str = "lti_refused.html",
                 detail: str = "", ids: dict[str, object] | None = None):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status
        self.page = page
        #: For the operator's log only (never shown to the person; never holds tokens).
        self.detail = detail
        #: Ids for the audit line (client id, deployment) once the signature is verified.
        self.ids: dict[str, object] = dict(ids or {})
