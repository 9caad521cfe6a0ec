"""Per-student admission for uploads, so one student cannot starve the others.

Each upload holds a thread of the shared pool and its body in memory until it is stored. Without a
bound, 200 parallel submits from one student queue ahead of everyone else's. `StudentSlots` admits
at most `per_student` uploads of one student at a time; the next one is answered 429 with
`Retry-After` at once (before its body is read), which the exchange client honours. Other students
are admitted independently, so their uploads never wait behind a flood.
"""

from __future__ import annotations

import threading


class StudentSlots:
    """A counter of in-flight uploads per student, with a fixed ceiling."""

    def __init__(self, per_student: int = 2, retry_after: int = 2):
        if per_student < 1:
            raise ValueError("per_student must be at least 1")
        self.per_student = per_student
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self._busy: dict[str, int] = {}

    def try_acquire(self, student: str) -> bool:
        """Admit one more upload of `student`, or say no (never waits)."""
        with self._lock:
            n = self._busy.get(student, 0)
            if n >= self.per_student:
                return False
            self._busy[student] = n + 1
            return True

    def release(self, student: str) -> None:
        with self._lock:
            n = self._busy.get(student, 0) - 1
            if n > 0:
                self._busy[student] = n
            else:
                self._busy.pop(student, None)

    def in_flight(self, student: str) -> int:
        with self._lock:
            return self._busy.get(student, 0)
