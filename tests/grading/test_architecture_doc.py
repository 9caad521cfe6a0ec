"""docs/architecture.md says which declarative base owns which grading tables; this keeps it true."""

from __future__ import annotations

import importlib
import re

from coursehub.paths import SOURCE_ROOT


def _documented_bases() -> dict[str, set[str]]:
    text = (SOURCE_ROOT / "docs" / "architecture.md").read_text()
    rows = re.findall(r"^\| `(coursehub\.grading\.[\w.]+)` \| ([^|]+) \|", text, re.MULTILINE)
    return {base: set(re.findall(r"`(\w+)`", tables)) for base, tables in rows}


def test_each_documented_base_owns_exactly_the_documented_tables():
    documented = _documented_bases()
    assert len(documented) == 3, documented
    for dotted, tables in documented.items():
        module, name = dotted.rsplit(".", 1)
        base = getattr(importlib.import_module(module), name)
        assert set(base.metadata.tables) == tables, dotted



def test_the_lti_store_row_lists_the_stores_tables():
    from coursehub.platform.lti.store import metadata

    text = (SOURCE_ROOT / "docs" / "architecture.md").read_text()
    (row,) = re.findall(r"^\| LTI store [^|]*\| ([^|]+) \|", text, re.MULTILINE)
    assert set(re.findall(r"`(\w+)`", row)) == set(metadata.tables)
