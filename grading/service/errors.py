"""The service's one refusal type, in a module of its own so every part can raise it."""

from __future__ import annotations


class ServiceError(Exception):
    """A refusal with an HTTP status and a message for the person at the other end.

    `retry_after` (seconds) becomes a `Retry-After` header: the client is told when trying again
    may succeed (a busy database, a student over their concurrent-upload limit)."""

    def __init__(self, status: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after
