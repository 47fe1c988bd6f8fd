"""Whole numbers a link carries (a record's id, a page, a paging cursor): read one way, before the database sees them.

Anyone can edit a link. Python's ``int()`` reads more than digits (``+7``,
`` 7``, ``1_000``, ``٣``) and any length, and ``str.isdigit()`` says yes to
``²``, which ``int()`` then refuses; a number past what the database holds
(a signed 64-bit integer) made SQLite raise OverflowError. Either way a
hand-edited link got the 500 page ("something went wrong on our side") and
an error in the log. Read here, anything but plain ASCII digits within that
bound is no number at all, and the page answers as for a record that does
not exist. Plain Python, no Flask.
"""

from __future__ import annotations

#: The largest whole number SSPM's database holds (SQLite's INTEGER, PostgreSQL's BIGINT).
LARGEST = 2**63 - 1


def whole_number(text: str | None) -> int | None:
    """``text`` as a number from 0 to :data:`LARGEST`, or None: ASCII digits only, nothing else."""
    if not text or len(text) > len(str(LARGEST)) or not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if number <= LARGEST else None
