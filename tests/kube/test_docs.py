"""The operator docs' examples are real: the settings example in deploy.md validates and renders
values that pass the z2jh schema, and scaling.md shows what `coursehub capacity` prints."""

from __future__ import annotations

import argparse
import datetime as dt
import re

from coursehub.platform.courses import load_catalog
from coursehub.platform.kube import capacity
from coursehub.platform.kube.helm_values import render
from coursehub.platform.settings import load_settings

from .conftest import REPO, validate_z2jh

DOCS = REPO / "docs" / "operators"


def code_block_after(text: str, marker: str) -> str:
    start = text.index(marker)
    m = re.search(r"```[a-z]*\n(.*?)```", text[start:], re.S)
    assert m, f"no code block after {marker!r}"
    return m.group(1)


def test_deploy_settings_example_validates_and_renders(tmp_path, z2jh):
    example = code_block_after((DOCS / "deploy.md").read_text(), "Write `deploy/settings.yaml`")
    f = tmp_path / "settings.yaml"
    f.write_text(example + f"courses_dir: {REPO / 'courses'}\n")
    settings = load_settings(f)
    assert settings.mode == "kubernetes" and settings.auth.lti.platforms[0].name == "canvas"
    values = render(settings, load_catalog(settings.courses_dir), week_of=dt.datetime(2026, 11, 23, tzinfo=dt.UTC))
    validate_z2jh(z2jh, values["jupyterhub"])
    assert values["jupyterhub"]["hub"]["db"]["type"] == "postgres"


def test_scaling_doc_shows_the_real_capacity_output(tmp_path, capsys):
    shown = code_block_after((DOCS / "scaling.md").read_text(), "`coursehub capacity --week 2026-11-23` prints")
    args = argparse.Namespace(settings=None, courses_dir=REPO / "courses", week=dt.date(2026, 11, 23),
                              timezone=None, enrollment=[], node_cpu=None, node_memory=None, plot=tmp_path / "c.png")
    assert capacity.run(args) == 0
    printed = capsys.readouterr().out
    assert shown.strip() in printed
