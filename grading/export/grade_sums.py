"""The grade table's GROUP BY in a process of its own, for `coursehub export`.

Run by `rows.py` as `python -I -S grade_sums.py DB_URI SQL` (DB_URI: the file's `file:` URI, its
path percent-encoded, so `#` or `?` in a folder name stays part of the path) while the export's
own connection holds its read lock: the sum over every grade row is half of an export's time, and
in a process of its own it takes a second core without ever waiting for the exporting process's GIL (a thread did, for
each of its result rows). Standard library only, so the interpreter starts in milliseconds.

Writes the rows to stdout with `marshal` (floats travel as their exact bits). Exit status 3: the
database was busy (a writer is waiting for the export's lock) and nothing was written; the caller
then runs the query on its own connection.
"""

from __future__ import annotations

import marshal
import sqlite3
import sys


def main(argv: list[str]) -> int:
    uri, sql = argv[1], argv[2]
    try:
        # timeout=0: never wait behind a writer's PENDING lock (the caller has its snapshot)
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=0, isolation_level=None)
        try:
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.execute("PRAGMA mmap_size=1073741824")
            rows = conn.execute(sql).fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return 3
    sys.stdout.buffer.write(marshal.dumps(rows))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
