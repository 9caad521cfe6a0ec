"""Writing an export: clean, formula-safe text cells, RFC 4180 CSV or xlsx, atomically.

Names come from the LMS and from people; they may hold control characters, which XML (so xlsx)
cannot carry at all (openpyxl raises IllegalCharacterError) and which CSV readers mangle. Every
text cell and header, in every format, has them replaced by U+FFFD before anything else.
Spreadsheets run a text cell that starts with `=`, `+`, `-`, `@`, tab or carriage return as a
formula (CSV injection). Such text cells get a leading single quote; numbers are left alone, so a
score of -1 stays the number -1 while a name "-1" becomes "'-1".
The file appears under its final name only when complete: written to a temporary file in the
same folder, fsynced, then renamed over the target.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pandas is imported where a frame is written: the CSV command runs without it
    import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: C0 controls except tab, line feed and carriage return; DEL and C1 controls; lone surrogates and
#: the two non-characters XML forbids. Tab/LF/CR are legal in both formats (quoted in CSV).
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
REPLACEMENT = "\ufffd"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def clean_text(value: object) -> object:
    """One cell without control characters (text only; anything else unchanged)."""
    if isinstance(value, str) and CONTROL.search(value):
        return CONTROL.sub(REPLACEMENT, value)
    return value


def neutralize_text(value: object) -> object:
    """One cell: clean, then quote a text cell a spreadsheet would run; anything else unchanged."""
    value = clean_text(value)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def neutralize(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` with every text cell (and header) cleaned and made formula-safe."""
    import pandas as pd

    out = frame.copy()
    for i in range(out.shape[1]):
        s = out.iloc[:, i]
        if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            try:
                dirty = s.str.contains(CONTROL.pattern, regex=True, na=False).astype(bool)
            except AttributeError:  # no text in this column
                dirty = s.map(lambda v: isinstance(v, str) and CONTROL.search(v) is not None).astype(bool)
            if dirty.any():
                s = s.astype(object).copy()
                s[dirty] = s[dirty].map(clean_text)
                out.isetitem(i, s)
            try:
                mask = s.str.slice(0, 1).isin(FORMULA_STARTS).fillna(False).astype(bool)
            except AttributeError:  # an object column holding no text (e.g. numbers only)
                mask = s.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_STARTS)).astype(bool)
            if mask.any():
                s = s.astype(object).copy()
                s[mask] = "'" + s[mask].astype(str)
                out.isetitem(i, s)
    out.columns = [neutralize_text(str(c)) for c in out.columns]
    return out


def atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Write through `write(fileobj)` to a temp file beside `path`, fsync, rename."""
    path = Path(path)
    folder = path.parent.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """RFC 4180: comma separated, CRLF line ends, fields with , " CR LF quoted, quotes doubled; UTF-8."""
    text = neutralize(frame).to_csv(index=False, lineterminator="\r\n", date_format=DATE_FORMAT)
    return text.encode("utf-8")


def _csv_cell(value: Any) -> Any:
    if type(value) is float:  # most cells: written as they are
        return value
    if isinstance(value, str):
        return neutralize_text(value)
    if isinstance(value, dt.datetime):
        return value.strftime(DATE_FORMAT)
    return value


def rows_csv_bytes(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    """`csv_bytes` for plain rows (str, float, bool, datetime, None): the same bytes, no pandas."""
    buf = io.StringIO(newline="")
    out = csv.writer(buf, lineterminator="\r\n")
    out.writerow([neutralize_text(str(c)) for c in header])
    out.writerows([[_csv_cell(v) for v in row] for row in rows])
    return buf.getvalue().encode("utf-8")


def xlsx_bytes(sheets: dict[str, pd.DataFrame]) -> bytes:
    import pandas as pd

    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as xl:
        for name, frame in sheets.items():
            neutralize(frame).to_excel(xl, sheet_name=name[:31], index=False)
    return buf.getvalue()


def write_table(frame: pd.DataFrame, out: Path, fmt: Literal["csv", "xlsx"] = "csv", sheet: str = "grades") -> None:
    """Write one table to `out` as CSV or xlsx, atomically."""
    data = csv_bytes(frame) if fmt == "csv" else xlsx_bytes({sheet: frame})
    atomic_write(out, lambda fh: fh.write(data))
