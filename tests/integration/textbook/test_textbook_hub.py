"""Textbooks on the real local platform, in a headless browser: read a page, launch it, edit the
notebook, update the book, launch again: the edit is kept and the update arrived. Also: who may
read a members-only book. One hub start for all of it."""

from __future__ import annotations

import json
import re
import shutil

import nbformat
import pytest
import requests
from support.hub import running_hub

from coursehub.platform.courses import load_course
from coursehub.platform.textbook.repo import sync_content_repo

pytestmark = pytest.mark.browser

NEW_CELL = "## A section the instructor added later"
MY_EDIT = 'greeting = "Alice was here"\nprint(greeting)'


def add_private_course(book) -> None:
    """A members-only copy of the demo textbook, as a second course."""
    folder = book.courses_dir / "members-201"
    if not folder.exists():
        shutil.copytree(book.source, folder / "textbook")
        (folder / "course.yaml").write_text(
            "id: members-201\ntitle: Members 201\ntextbook: {path: textbook, public: false}\n")


def sign_in(page, hub, name: str) -> None:
    """The development login's form, posted with the browser's own cookies (the page shows a button)."""
    request = page.context.request
    assert request.get(f"{hub.url}/hub/login").ok
    xsrf = next(c["value"] for c in page.context.cookies() if c["name"] == "_xsrf")
    r = request.post(f"{hub.url}/hub/login", form={"username": name, "password": "", "_xsrf": xsrf},
                     max_redirects=0)
    assert r.status in (302, 303), r.status


def launch_from_book(page, hub) -> None:
    """Open the welcome page of the book, click its launch link, wait for JupyterLab with the notebook."""
    page.goto(f"{hub.url}/services/textbooks/demo-101/01-welcome.html")
    link = page.locator("a.coursehub-launch-link")
    link.wait_for(timeout=60_000)
    link.click()
    page.wait_for_url(re.compile(r".*/user/alice/lab/tree/demo-101-textbook/01-welcome\.ipynb$"), timeout=180_000)
    in_notebook(page, "1. Welcome").wait_for(timeout=120_000)


def in_notebook(page, text: str):
    """A cell of the open notebook showing `text` (rendered Markdown or code)."""
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell", has_text=text).first


def contents(hub, token: str, path: str) -> requests.Response:
    return requests.get(f"{hub.url}/user/alice/api/contents/{path}", timeout=30,
                        headers={"Authorization": f"token {token}"})


def test_read_launch_edit_update_relaunch(book, page, tmp_path):
    add_private_course(book)
    settings = {"state_dir": str(book.state_dir), "courses_dir": str(book.courses_dir)}
    source = book.source / "01-welcome.ipynb"
    original = source.read_bytes()
    with running_hub(tmp_path, settings=settings) as hub:
        # Public book: readable without signing in, with the launch link.
        r = requests.get(f"{hub.url}/services/textbooks/demo-101/02-lists.html", timeout=30)
        assert r.status_code == 200 and "coursehub-launch-link" in r.text

        sign_in(page, hub, "alice")
        launch_from_book(page, hub)
        home = book.state_dir / "homes" / "alice" / "demo-101-textbook"
        assert (home / "01-welcome.ipynb").is_file()
        assert hub.user("alice")["servers"][""]["user_options"] == {"course": "demo-101"}

        # Alice edits the notebook (saved through the Jupyter contents API, as JupyterLab does).
        token = hub.user_token("alice")
        model = contents(hub, token, "demo-101-textbook/01-welcome.ipynb").json()
        model["content"]["cells"][1]["source"] = MY_EDIT
        r = requests.put(f"{hub.url}/user/alice/api/contents/demo-101-textbook/01-welcome.ipynb", timeout=30,
                         headers={"Authorization": f"token {token}"},
                         data=json.dumps({"type": "notebook", "format": "json", "content": model["content"]}))
        assert r.status_code == 200, r.text

        try:
            # The instructor updates the book: a new cell on that page and a new page.
            nb = nbformat.read(source, as_version=4)
            nb.cells.append(nbformat.v4.new_markdown_cell(NEW_CELL))
            nbformat.write(nb, source)
            (book.source / "04-dicts.md").write_text("# 4. Dictionaries\n")
            assert sync_content_repo(load_course(book.courses_dir / "demo-101"), book.settings)
        finally:
            source.write_bytes(original)  # the shared copy goes back for the other textbook tests
            (book.source / "04-dicts.md").unlink()

        launch_from_book(page, hub)
        in_notebook(page, "A section the instructor added later").wait_for(timeout=60_000)
        in_notebook(page, "Alice was here").wait_for(timeout=60_000)
        merged = nbformat.read(home / "01-welcome.ipynb", as_version=4)
        sources = [c.source for c in merged.cells]
        assert MY_EDIT in sources, "the student's edit was lost"
        assert NEW_CELL in sources, "the update did not arrive"
        assert (home / "04-dicts.md").is_file()

        # A members-only book: anonymous readers are sent to sign in, non-members are refused.
        url = f"{hub.url}/services/textbooks/members-201/01-welcome.html"
        r = requests.get(url, timeout=30, allow_redirects=False)
        assert r.status_code == 302 and "/hub/api/oauth2/authorize" in r.headers["Location"]
        assert "/hub/login" in requests.get(url, timeout=30).url
        mallory = hub.login("mallory")
        hub.api("DELETE", "/groups/course:members-201:student/users", json={"users": ["mallory"]}).raise_for_status()
        r = mallory.get(url, timeout=60)
        assert r.status_code == 403 and "coursehub-launch-link" not in r.text
        assert "for members of Members 201" in r.text
        r = mallory.get(f"{hub.url}/services/textbooks/members-201/..%2F..%2Ftextbook-repos/members-201.git/HEAD",
                        timeout=30)
        assert r.status_code in (403, 404)
        # A member gets past the check (the book is then built on first visit, or served).
        bob = hub.login("bob")
        r = bob.get(url, timeout=60)
        assert r.status_code in (200, 503), r.status_code
        assert r.status_code == 200 or "being built" in r.text
