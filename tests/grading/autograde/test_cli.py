"""`coursehub autograde` argument handling and the errors it gives before any grading starts."""

from __future__ import annotations

from coursehub.cli import build_parser, main


def test_registered_with_its_options():
    args = build_parser("autograde").parse_args(["autograde", "ps1", "--course-dir", "/c", "--workers", "3"])
    assert (args.assignment, str(args.course_dir), args.workers, args.force) == ("ps1", "/c", 3, False)


def test_missing_course_dir_is_a_clear_error(tmp_path, capsys):
    assert main(["autograde", "ps1", "--course-dir", str(tmp_path / "nope"), "--no-progress"]) == 1
    assert "no such course directory" in capsys.readouterr().err


def test_missing_assignment_source_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "c").mkdir()
    assert main(["autograde", "ps9", "--course-dir", str(tmp_path / "c"), "--no-progress"]) == 1
    assert "source/ps9: no such assignment source folder" in capsys.readouterr().err


def test_nothing_submitted_grades_nothing(demo_course, tmp_path, capsys):
    import shutil

    shutil.copytree(demo_course, tmp_path / "c")
    assert main(["autograde", "ps1", "--course-dir", str(tmp_path / "c"), "--no-progress"]) == 0
    assert "nothing to grade" in capsys.readouterr().out
