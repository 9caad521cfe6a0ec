"""The textbooks service on its own (no hub): serving, refusals, path tricks, building on demand."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from coursehub.platform.courses import Catalog, load_course
from coursehub.platform.textbook.service import make_app


@pytest.fixture
async def serve():
    servers = []

    async def start(settings, courses):
        sock, port = bind_unused_port()
        server = HTTPServer(make_app(settings, Catalog(courses)))
        server.add_sockets([sock])
        servers.append(server)
        base = f"http://127.0.0.1:{port}/services/textbooks/"

        async def get(path: str):
            return await AsyncHTTPClient().fetch(base + path, raise_error=False, follow_redirects=False)

        return get

    yield start
    for server in servers:
        server.stop()


def private(course, course_id: str = "members-201"):
    return course.model_copy(update={"id": course_id, "textbook": course.textbook.model_copy(update={"public": False})})


async def test_serves_built_books_and_refuses_tricks(book, serve):
    get = await serve(book.settings, [book.course, private(book.course)])
    index = await get("")
    assert index.code == 200 and b'href="demo-101/"' in index.body
    assert (await get("demo-101")).code == 302
    page = await get("demo-101/02-lists.html")
    assert page.code == 200 and b"coursehub-launch-link" in page.body
    assert (await get("demo-101/")).code == 200  # index.html
    assert (await get("demo-101/_static/mathjax/MathJax.js")).code == 200
    for trick in ["demo-101/.coursehub-book.json", "demo-101/.buildinfo", "demo-101/%2e%2e/%2e%2e/settings.effective.yaml",
                  "demo-101/..%2F..%2Ftextbook-repos/demo-101.git/HEAD", "demo-101/_static/%2e%2e/%2e%2e/%2e%2e/state",
                  "demo-101//etc/passwd", "nope/index.html", "DEMO-101/index.html"]:
        r = await get(trick)
        assert r.code in (403, 404), (trick, r.code)
    # A members-only book needs a hub sign-in; without the hub it is refused, not served.
    r = await get("members-201/02-lists.html")
    assert r.code == 403 and b"coursehub-launch-link" not in r.body


async def test_the_services_own_pages_are_escaped_templates(book, serve):
    """The list of books and the error pages come from autoescaped Jinja templates: a course title
    or an error message with markup shows as text."""
    hostile = book.course.model_copy(update={"id": "xss-1", "title": "<script>alert(1)</script> & co"})
    get = await serve(book.settings, [book.course, private(book.course), hostile])
    index = await get("")
    assert index.code == 200 and b"<!doctype html>" in index.body and b'lang="en"' in index.body
    assert b"<script>alert(1)</script>" not in index.body
    assert b"&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in index.body
    assert b'href="members-201/"' in index.body and b"(for course members: sign-in required)" in index.body
    missing = await get("nope/index.html")
    assert missing.code == 404 and b"<h1>404: Not Found</h1>" in missing.body
    assert b"There is no textbook &#39;nope&#39;." in missing.body  # the handler's message, escaped


async def test_a_missing_book_is_built_on_first_visit(serve, tmp_path: Path):
    course_dir = tmp_path / "courses" / "tiny-1"
    (course_dir / "textbook").mkdir(parents=True)
    (course_dir / "course.yaml").write_text("id: tiny-1\ntitle: Tiny\ntextbook: {path: textbook}\n")
    (course_dir / "textbook" / "intro.md").write_text("# Tiny\n\nThe mean is $\\bar{x}$.\n")
    from coursehub.platform.settings import load_settings

    settings = load_settings(state_dir=str(tmp_path / "state"), courses_dir=str(tmp_path / "courses"))
    get = await serve(settings, [load_course(course_dir)])
    first = await get("tiny-1/intro.html")
    assert first.code == 503 and b'http-equiv="refresh"' in first.body
    for _ in range(600):
        r = await get("tiny-1/intro.html")
        if r.code != 503:
            break
        await asyncio.sleep(0.2)
    assert r.code == 200 and b"coursehub-launch-link" in r.body


async def test_a_book_that_cannot_be_built_says_so(serve, tmp_path: Path):
    course_dir = tmp_path / "courses" / "bad-1"
    (course_dir / "textbook").mkdir(parents=True)
    (course_dir / "course.yaml").write_text("id: bad-1\ntitle: Bad\ntextbook: {path: textbook}\n")
    (course_dir / "textbook" / "intro.md").write_text("# Bad\n")
    (course_dir / "textbook" / "_toc.yml").write_text("root: [unclosed\n")
    from coursehub.platform.settings import load_settings

    settings = load_settings(state_dir=str(tmp_path / "state"), courses_dir=str(tmp_path / "courses"))
    get = await serve(settings, [load_course(course_dir)])
    r = await get("bad-1/intro.html")
    assert r.code == 500 and b"could not be built" in r.body
    assert b"unclosed" not in r.body  # details go to the operator's log, not to readers


async def test_service_start_syncs_repositories_and_can_prebuild(tmp_path: Path, monkeypatch):
    from coursehub.platform.settings import load_settings
    from coursehub.platform.textbook.links import local_repo_path
    from coursehub.platform.textbook.service import serve

    course_dir = tmp_path / "courses" / "tiny-2"
    (course_dir / "textbook").mkdir(parents=True)
    (course_dir / "course.yaml").write_text("id: tiny-2\ntitle: Tiny\ntextbook: {path: textbook}\n")
    (course_dir / "textbook" / "intro.md").write_text("# Tiny\n")
    settings = load_settings(state_dir=str(tmp_path / "state"), courses_dir=str(tmp_path / "courses"),
                             textbook={"build_at_start": True})
    sock, port = bind_unused_port()
    sock.close()
    monkeypatch.setenv("JUPYTERHUB_SERVICE_URL", f"http://127.0.0.1:{port}")
    stopped = asyncio.Event()
    task = asyncio.create_task(serve(settings, Catalog([load_course(course_dir)]), stopped))
    index = settings.state_dir / "textbooks" / "tiny-2" / "index.html"
    try:
        for _ in range(900):
            if index.is_file() or task.done():
                break
            await asyncio.sleep(0.2)
        assert index.is_file(), "the book was not built at start"
        assert (local_repo_path(settings, "tiny-2") / "HEAD").is_file()
    finally:
        stopped.set()
        await asyncio.wait_for(task, 60)
