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


def test_the_workers_start_before_the_submissions_are_read(demo_course, tmp_path, monkeypatch, capsys):
    """The pool forks (and its workers start their sandboxes) before the submissions are read and
    the gradebook is opened: the first sandbox of a large batch does not wait for every file to be
    read. Every submission is still read once, before its job is handed to a worker."""
    import shutil

    from support import samples

    from coursehub.grading.autograde import course as course_module
    from coursehub.grading.autograde import gradebook, pool
    from coursehub.grading.autograde.grader import SubmissionResult
    from coursehub.grading.sandbox import bwrap

    root = tmp_path / "c"
    shutil.copytree(demo_course, root)
    students = ["s1", "s2", "s3"]
    for student in students:
        samples.write_submission(root, student, samples.correct(samples.released(root)))
    events: list[str] = []

    class RecordingPool:
        def __init__(self, index, config, limits, workers, runtime=None, total=None):
            events.append(f"pool workers={workers} total={total}")

        def grade(self, jobs):
            for job in jobs:
                events.append(f"graded {job.student}")
                yield SubmissionResult(job.student, job.assignment, "failed", error="not graded in this test")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            events.append("pool closed")

    real_job, real_writer = course_module.NbgraderCourse.job, gradebook.GradebookWriter.__init__

    def reading(self, student, assignment, index):
        events.append(f"read {student}")
        return real_job(self, student, assignment, index)

    def opening(self, *args, **kwargs):
        events.append("gradebook opened")
        real_writer(self, *args, **kwargs)

    monkeypatch.setattr(pool, "GraderPool", RecordingPool)
    monkeypatch.setattr(course_module.NbgraderCourse, "job", reading)
    monkeypatch.setattr(gradebook.GradebookWriter, "__init__", opening)
    monkeypatch.setattr(bwrap, "check", lambda: None)
    (tmp_path / "courses").mkdir()  # no course definitions: the platform's own environment
    settings = tmp_path / "settings.yaml"
    settings.write_text(f"courses_dir: {tmp_path / 'courses'}\n")
    assert main(["autograde", "ps1", "--course-dir", str(root), "--no-progress", "--workers", "2",
                 "--settings", str(settings)]) == 1
    assert events[0] == "pool workers=2 total=3"
    assert events[1] == "gradebook opened"
    assert [e for e in events if e.startswith(("read", "graded"))] == [
        x for s in students for x in (f"read {s}", f"graded {s}")]
    assert events[-1] == "pool closed"
    out = capsys.readouterr().out
    assert out.count("grader error: not graded in this test") == 3
