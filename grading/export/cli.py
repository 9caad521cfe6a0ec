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
    from .source import GradebookMissing

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
    from coursehub.startup import collector_paused

    # An export builds a million tuples and lists, none of them in a reference cycle: the cyclic
    # collector would walk the growing heap again and again for nothing (a fifth of a 3,000 x 40
    # export's time). Everything is freed by reference counting as before, so nothing is frozen.
    try:
        with collector_paused(freeze=False):
            counts = (_xlsx if args.format == "xlsx" else _csv)(args, course)
    except GradebookMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: {counts[0]} students, {counts[1]} assignments")
    return 0


def _csv(args: argparse.Namespace, course: object) -> tuple[int, int]:
    """CSV and Canvas: plain Python (`rows.py`), no pandas to import."""
    from .rows import canvas_rows, long_rows, read_plain, wide_rows
    from .writers import atomic_write, rows_csv_bytes

    grades = read_plain(args.course_dir, args.db, course)
    if args.format == "canvas":
        header, rows = canvas_rows(grades, section=args.section)
    else:
        header, rows = long_rows(grades) if args.long else wide_rows(grades)
    data = rows_csv_bytes(header, rows)
    atomic_write(args.out, lambda fh: fh.write(data))
    return len(grades.students), len(grades.assignments)


def _xlsx(args: argparse.Namespace, course: object) -> tuple[int, int]:
    """xlsx: the pandas tables through openpyxl."""
    from .tables import load_grades, long_table, wide_table
    from .writers import write_table

    grades = load_grades(args.course_dir, args.db, course)
    write_table(long_table(grades) if args.long else wide_table(grades), args.out, "xlsx")
    return len(grades.students), len(grades.assignments)
