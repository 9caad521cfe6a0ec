"""Submissions the load test sends: valid uploads of the requested size, each one different."""

from __future__ import annotations

import json

from coursehub.grading.archive import UploadLimits, read_archive
from coursehub.loadtest.exchange import notebook_template, unique_archive


def test_unique_archives_are_valid_notebooks_of_the_size() -> None:
    template = notebook_template(200_000)
    a, b = unique_archive(template), unique_archive(template)
    assert a != b and len(a) == len(b) == len(template)
    for archive in (a, b):
        files = read_archive(archive, UploadLimits(2**30, 2**30, 10))
        assert list(files) == ["loadtest.ipynb"]
        assert 190_000 <= len(files["loadtest.ipynb"]) <= 204_000  # about the size asked for
        nb = json.loads(files["loadtest.ipynb"])
        assert "LOADTEST-UNIQUE" not in "".join(nb["cells"][0]["source"])
