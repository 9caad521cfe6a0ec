"""One kernel per notebook: session creations for a notebook that is being created share it."""

from __future__ import annotations

import asyncio

import pytest

from coursehub.platform.one_session import share_pending_creations


class FakeSessions:
    """SessionManager.create_session that takes its time, counting the kernels it starts."""

    def __init__(self, fail_first: bool = False):
        self.started: list[tuple] = []
        self.fail_first = fail_first

    async def create_session(self, path=None, name=None, type=None, kernel_name=None, kernel_id=None):  # noqa: A002
        self.started.append((path, type, kernel_id))
        n = len(self.started)
        await asyncio.sleep(0.05)
        if self.fail_first and n == 1:
            raise RuntimeError("kernel died while starting")
        return {"id": f"s{n}", "path": path, "kernel": {"id": kernel_id or f"k{n}"}}


async def test_requests_for_a_notebook_being_created_share_its_kernel():
    fake = FakeSessions()
    create = share_pending_creations(fake.create_session)
    a, b, c = await asyncio.gather(create(path="c/ps1/part1.ipynb", type="notebook"),
                                   create(path="c/ps1/part1.ipynb", type="notebook", kernel_name="python3"),
                                   create(path="c/ps1/part2.ipynb", type="notebook"))
    assert a == b and a["kernel"]["id"] != c["kernel"]["id"]
    assert [p for p, _, _ in fake.started] == ["c/ps1/part1.ipynb", "c/ps1/part2.ipynb"]
    await create(path="c/ps1/part1.ipynb", type="notebook")  # after it is done: the manager's own rules
    assert len(fake.started) == 3


async def test_other_sessions_are_not_merged():
    fake = FakeSessions()
    create = share_pending_creations(fake.create_session)
    await asyncio.gather(create(path="t.py", type="console"), create(path="t.py", type="console"),
                         create(path="n.ipynb", type="notebook", kernel_id="k-given"),
                         create(path="n.ipynb", type="notebook", kernel_id="k-given"))
    assert len(fake.started) == 4


async def test_a_failed_creation_fails_its_waiters_and_the_next_request_retries():
    fake = FakeSessions(fail_first=True)
    create = share_pending_creations(fake.create_session)
    results = await asyncio.gather(create(path="n.ipynb", type="notebook"), create(path="n.ipynb", type="notebook"),
                                   return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results) and len(fake.started) == 1
    assert (await create(path="n.ipynb", type="notebook"))["path"] == "n.ipynb"
    assert len(fake.started) == 2


async def test_a_waiter_that_is_cancelled_does_not_cancel_the_creation():
    fake = FakeSessions()
    create = share_pending_creations(fake.create_session)
    first = asyncio.ensure_future(create(path="n.ipynb", type="notebook"))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(create(path="n.ipynb", type="notebook"))
    await asyncio.sleep(0)
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    assert (await first)["path"] == "n.ipynb" and len(fake.started) == 1
