"""CSV exports a spreadsheet opens safely: the one formula guard every console export uses.

Exported cells hold what anyone typed (a user name tried at sign-in, a
display name set in the directory); opened in a spreadsheet,
``=HYPERLINK(...)`` would run. Every export goes through :func:`csv_lines`,
so none can forget the guard. Plain Python, no Flask: a view streams the lines.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence

#: What a spreadsheet reads as the start of a formula (or of a cell it splits): such a cell is made text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """A cell a spreadsheet shows as text: a leading ``'`` before what would start a formula."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[str]]) -> Iterator[str]:
    """The export a line at a time (UTF-8 with a BOM, which spreadsheets need to read accents right)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(cells: Iterable[str]) -> str:
        writer.writerow([spreadsheet_safe(c) for c in cells])
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield "\ufeff" + line(header)
    for row in rows:
        yield line(row)
