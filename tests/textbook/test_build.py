"""The textbook build: HTML pages with the table of contents, executed outputs, local math and a
launch link on every page; staleness; what a course's own book files may and may not change."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from coursehub.cli import main
from coursehub.platform.courses import load_course
from coursehub.platform.errors import ConfigError
from coursehub.platform.textbook.build import (
    BuildFailed,
    book_config,
    build_textbook,
    generated_toc,
    is_stale,
    pages_of,
)
from coursehub.platform.textbook.links import launch_url

PAGES = ["01-welcome", "02-lists", "03-plotting"]


def launch_links(page_html: str) -> list[str]:
    return [html.unescape(u) for u in re.findall(r'class="coursehub-launch-link" href="([^"]+)"', page_html)]


def test_every_page_is_built_with_its_launch_link(book):
    assert book.result.built and book.result.pages == [f"{p}.ipynb" for p in PAGES]
    assert (book.html / "index.html").is_file()
    for page in PAGES:
        text = (book.html / f"{page}.html").read_text()
        assert launch_links(text) == [launch_url(book.course, page, book.settings)]
        assert "coursehub-launch-button" in text  # also in the book theme's header
        # the table of contents links every page
        for other in PAGES:
            assert f'href="{other}.html"' in text or other == page


def test_outputs_plots_and_math_render_without_network(book):
    welcome = (book.html / "01-welcome.html").read_text()
    assert "Hello, Demo 101!" in welcome  # executed output
    assert "[1, 4, 9, 16, 25]" in (book.html / "02-lists.html").read_text()
    plotting = (book.html / "03-plotting.html").read_text()
    image = re.search(r'<img[^>]+src="(_images/[^"]+\.png)"', plotting)
    assert image and (book.html / image[1]).stat().st_size > 1000
    # math: MathJax from the book itself, no CDN
    assert 'src="_static/mathjax/MathJax.js?config=' in welcome
    assert (book.html / "_static" / "mathjax" / "MathJax.js").is_file()
    assert "cdn.jsdelivr" not in welcome and "https://" not in "".join(re.findall(r"<script[^>]*>", welcome))
    assert r"\frac{1}{n}" in welcome


def test_progress_is_reported(book):
    text = "\n".join(book.log)
    assert "reading sources" in text and "Executed" in text and "textbook built" in text


def test_a_built_book_is_up_to_date_until_its_source_changes(book):
    result = build_textbook(book.course, book.settings)  # no-op unless the source changed
    assert not is_stale(book.course, book.settings)
    assert result.html_dir == book.html
    page = book.source / "02-lists.ipynb"
    original = page.read_bytes()
    try:
        page.write_bytes(original.replace(b"Lists and loops", b"Lists, loops"))
        assert is_stale(book.course, book.settings)
    finally:
        page.write_bytes(original)
    assert not is_stale(book.course, book.settings)


def test_refuses_to_replace_a_folder_that_is_not_a_book(book, tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(ConfigError, match="not a coursehub textbook build"):
        build_textbook(book.course, book.settings, out)
    assert (out / "thesis.tex").read_text() == "years of work"


def test_generated_toc_and_page_order(tmp_path: Path):
    folder = tmp_path / "tb"
    (folder / "part2").mkdir(parents=True)
    for name in ("b.ipynb", "a.md", "index.md", "part2/c.md", "_toc.yml", "notes.txt"):
        (folder / name).write_text("# x\n")
    (folder / "_build").mkdir()
    (folder / "_build" / "z.md").write_text("# z\n")
    pages = pages_of(folder)
    assert pages == ["index.md", "a.md", "b.ipynb", "part2/c.md"]
    assert generated_toc(pages) == {"format": "jb-book", "root": "index",
                                    "chapters": [{"file": "a"}, {"file": "b"}, {"file": "part2/c"}]}


def test_a_course_config_is_kept_but_cannot_drop_the_launch_links(book, tmp_path):
    user = {"title": "My book", "execute": {"execute_notebooks": "off", "cache": "/elsewhere"},
            "sphinx": {"extra_extensions": ["sphinx_proof"], "config": {"coursehub_launch_urls": {}}}}
    config = book_config(book.course, user, {"01-welcome": "/hub/x"}, tmp_path / "cache")
    assert config["title"] == "My book"
    assert config["execute"]["execute_notebooks"] == "off"  # the author's choice
    assert config["execute"]["cache"] == str(tmp_path / "cache")
    assert config["sphinx"]["extra_extensions"] == ["sphinx_proof", "coursehub.platform.textbook.sphinx_launch"]
    assert config["sphinx"]["config"]["coursehub_launch_urls"] == {"01-welcome": "/hub/x"}
    assert config["only_build_toc_files"] is True


def test_cli_url_and_errors(book, capsys, monkeypatch):
    monkeypatch.setenv("COURSEHUB_STATE_DIR", str(book.state_dir))
    monkeypatch.setenv("COURSEHUB_COURSES_DIR", str(book.courses_dir))
    assert main(["textbook", "url", "demo-101", "02-lists"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("http://127.0.0.1:8000/hub/spawn?") and "course=demo-101&next=" in out
    assert main(["textbook", "url", "demo-101", "../course.yaml"]) == 1
    assert "is not a textbook page" in capsys.readouterr().err
    assert main(["textbook", "build", "no-such-course"]) == 1
    assert "no course 'no-such-course'" in capsys.readouterr().err
    assert main(["textbook", "build", "demo-101"]) == 0  # up to date: quick
    assert "up to date" in capsys.readouterr().out


def test_a_failing_cell_fails_the_build_with_its_log(tmp_path):
    course_dir = tmp_path / "courses" / "broken-1"
    (course_dir / "textbook").mkdir(parents=True)
    (course_dir / "course.yaml").write_text("id: broken-1\ntitle: Broken\ntextbook: {path: textbook}\n")
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Oops"),
                                         nbformat.v4.new_code_cell("1 / 0")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, course_dir / "textbook" / "oops.ipynb")
    from coursehub.platform.settings import load_settings

    settings = load_settings(state_dir=str(tmp_path / "state"), courses_dir=str(tmp_path / "courses"))
    with pytest.raises(BuildFailed, match="ZeroDivisionError"):
        build_textbook(load_course(course_dir), settings)
    assert not (settings.state_dir / "textbooks" / "broken-1").exists()  # nothing half-built is served
