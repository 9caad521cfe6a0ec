"""`coursehub export`: the course's gradebook as CSV, a Canvas import file or an xlsx workbook."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--course-dir", type=Path, required=True,
                   help="the nbgrader course directory (its gradebook.db is read unless --db is given)")
    p.add_argument("--format", choices=("csv", "canvas", "xlsx"), default="csv",
                   help="csv: one row per student; canvas: Canvas gradebook import CSV; xlsx: a workbook")
    p.add_argument("--long", action="store_true",
                   help="one row per student and assignment instead of one row per student")
    p.add_argument("--out", type=Path, required=True, help="file to write (replaced atomically)")
    p.add_argument("--db", help="gradebook database URL (default: sqlite:///COURSE_DIR/gradebook.db)")
    p.add_argument("--course", type=Path,
                   help="course.yaml or its folder, for deadlines and the late policy "
                        "(default: COURSE_DIR/course.yaml if present; else the gradebook's due dates, no policy)")
    p.add_argument("--section", default="", help="Section column value in the Canvas format")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from .snapshot import GradebookMissing
    from .tables import canvas_table, load_grades, long_table, wide_table
    from .writers import write_table

    if args.format == "canvas" and args.long:
        print("error: the Canvas import format is one row per student; drop --long", file=sys.stderr)
        return 2
    course = None
    course_path = args.course or (args.course_dir / "course.yaml")
    if args.course or course_path.is_file():
        from coursehub.platform.courses import load_course
        from coursehub.platform.errors import ConfigError

        folder = course_path.parent if course_path.name == "course.yaml" else course_path
        try:
            course = load_course(folder)
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    try:
        grades = load_grades(args.course_dir, args.db, course)
    except GradebookMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.format == "canvas":
        table = canvas_table(grades, section=args.section)
    else:
        table = long_table(grades) if args.long else wide_table(grades)
    write_table(table, args.out, "xlsx" if args.format == "xlsx" else "csv")
    print(f"wrote {args.out}: {len(grades.students)} students, {len(grades.assignments)} assignments")
    return 0
