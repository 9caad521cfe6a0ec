"""The autograde steps come from the course's nbgrader config, as `nbgrader autograde` reads it."""

from __future__ import annotations

import nbformat
import pytest
from nbconvert.preprocessors import Preprocessor
from nbgrader.converters.autograde import Autograde
from nbgrader.preprocessors import Execute, OverwriteCells
from support import samples

from coursehub.grading.autograde import steps
from coursehub.grading.autograde.course import NbgraderCourse
from coursehub.grading.autograde.grader import Grader, SubmissionJob

DEFAULT_AUTOGRADE = [f"{c.__module__}.{c.__name__}" for c in steps.NBGRADER_AUTOGRADE]


@pytest.fixture(scope="module")
def index(demo_course):
    return NbgraderCourse(demo_course).source_index("ps1")


def course_with(tmp_path, config: str) -> NbgraderCourse:
    """A course folder whose nbgrader_config.py is `config` (the demo's source index is used)."""
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n" + config)
    return NbgraderCourse(tmp_path)


def test_our_defaults_are_nbgraders():
    """Fails when nbgrader changes its default lists: then the split in steps.py must be revisited."""
    traits = Autograde.class_traits()
    assert list(steps.NBGRADER_SANITIZE) == traits["sanitize_preprocessors"].default()
    assert list(steps.NBGRADER_AUTOGRADE) == traits["autograde_preprocessors"].default()
    # and we run every one of them, in that order, where nbgrader would
    p = steps.pipeline(steps.Config())
    ours = {v: k for k, v in steps._INDEXED.items()}  # our gradebook-free versions of nbgrader's classes
    assert [ours.get(c, c) for c in p.sanitize] == list(steps.NBGRADER_SANITIZE)
    assert list(p.finish) == [c for c in steps.NBGRADER_AUTOGRADE if c not in steps._ELSEWHERE]


class MarkExecuted(Preprocessor):
    """A course's own step: tags every code cell it sees (so the test can tell it ran)."""

    def preprocess_cell(self, cell, resources, index):
        cell.metadata.setdefault("tags", []).append("course-step")
        return cell, resources


class Broken(Preprocessor):
    def preprocess(self, nb, resources):
        raise RuntimeError("this step is broken")


def test_an_added_preprocessor_runs_where_nbgrader_runs_it(demo_course, index, tmp_path):
    course = course_with(tmp_path, f"""
c.Autograde.autograde_preprocessors = {DEFAULT_AUTOGRADE[:1]!r} + ['nbconvert.preprocessors.TagRemovePreprocessor'] \\
    + {DEFAULT_AUTOGRADE[1:]!r}  # after Execute, before ClearMetadataPreprocessor drops the tags
c.TagRemovePreprocessor.remove_cell_tags = {{'scratch'}}
c.TagRemovePreprocessor.enabled = True  # nbconvert's steps are off unless enabled, in nbgrader too
""")
    assert course.config.Autograde.autograde_preprocessors[1] == "nbconvert.preprocessors.TagRemovePreprocessor"
    nb = samples.released(demo_course)["part1"]
    nb.cells.append(nbformat.v4.new_code_cell("print('my scratch work')", metadata={"tags": ["scratch"]}))
    res = steps.resources_for("alice", "ps1", "part1", index)
    sanitized = steps.sanitize(nbformat.writes(nb), res, course.config)
    assert "my scratch work" in sanitized  # the step is in the autograde pass, after Execute
    res["nbgrader"]["source_index"] = None
    finished = steps.finish(nbformat.reads(sanitized, 4), res, course.config)
    assert "my scratch work" not in finished
    assert "my scratch work" in steps.finish(nbformat.reads(sanitized, 4), res, NbgraderCourse(demo_course).config)


def test_a_step_before_execute_runs_before_the_sandbox(demo_course, index):
    config = steps.Config()
    config.Autograde.autograde_preprocessors = [MarkExecuted, *steps.NBGRADER_AUTOGRADE]
    config.Autograde.sanitize_preprocessors = [*steps.NBGRADER_SANITIZE]
    config.MarkExecuted.enabled = True
    p = steps.pipeline(config)
    assert p.sanitize[-1] is MarkExecuted and MarkExecuted not in p.finish
    res = steps.resources_for("alice", "ps1", "part1", index)
    out = nbformat.reads(steps.sanitize(nbformat.writes(samples.released(demo_course)["part1"]), res, config), 4)
    assert all("course-step" in c.metadata.get("tags", []) for c in out.cells if c.cell_type == "code")


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("autograde_preprocessors", ["nbgrader.preprocessors.Execute", "coursehub_nope.Missing"],
     "'coursehub_nope.Missing', which cannot be imported"),
    ("sanitize_preprocessors", ["nbgrader.preprocessors.NoSuchStep"], "which cannot be imported"),
    ("sanitize_preprocessors", ["os.path.join"], "not an nbconvert Preprocessor class"),
    ("autograde_preprocessors", [type("MyExecute", (Execute,), {}), *steps.NBGRADER_AUTOGRADE[1:]],
     "a subclass of nbgrader's Execute"),
    ("sanitize_preprocessors", [type("MyOverwrite", (OverwriteCells,), {})], "a subclass of nbgrader's OverwriteCells"),
    ("autograde_preprocessors", [c for c in steps.NBGRADER_AUTOGRADE if c.__name__ != "AssignLatePenalties"],
     "must list nbgrader's AssignLatePenalties"),
    ("autograde_preprocessors", list(steps.NBGRADER_AUTOGRADE[1:]), "must list nbgrader's Execute exactly once"),
    ("sanitize_preprocessors", [Execute], "only runs in the autograde pass"),
])
def test_what_cannot_run_is_refused_with_the_setting_named(setting, value, message):
    config = steps.Config()
    config.Autograde[setting] = value
    with pytest.raises(steps.PipelineError, match="autograde refused") as e:
        steps.pipeline(config)
    assert message in str(e.value) and f"c.Autograde.{setting}" in str(e.value)


def test_refused_config_never_becomes_a_score(demo_course, index, tmp_path):
    """An unknown class or a broken course step: status "failed" (retried, never written), not
    "invalid" (which would blame the student), and nothing is run."""
    nb = nbformat.writes(samples.correct(samples.released(demo_course))["part1"])
    job = SubmissionJob("alice", "ps1", {"part1": nb})
    for extra, why in (["coursehub_nope.Missing"], "cannot be imported"), ([Broken], "this step is broken"):
        config = steps.Config()
        config.Autograde.sanitize_preprocessors = [*steps.NBGRADER_SANITIZE, *extra]
        config.Broken.enabled = True
        grader = Grader(index, config, base_dir=tmp_path)  # never started: nothing may reach the sandbox
        result = grader.grade(job)
        assert result.status == "failed" and why in result.error and result.notebooks == []


def test_cli_refuses_before_grading(demo_course, tmp_path, capsys):
    import shutil

    from coursehub.cli import main

    shutil.copytree(demo_course, tmp_path / "c")
    (tmp_path / "c" / "nbgrader_config.py").write_text(
        (tmp_path / "c" / "nbgrader_config.py").read_text()
        + "\nc.Autograde.sanitize_preprocessors = ['coursehub_nope.Missing']\n")
    assert main(["autograde", "ps1", "--course-dir", str(tmp_path / "c"), "--no-progress"]) == 1
    assert "'coursehub_nope.Missing', which cannot be imported" in capsys.readouterr().err
