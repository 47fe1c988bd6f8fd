"""The "it is done" page after a reset or an unlock, reached from more than one feature.

Forgot Password by questions, Unlock Account and Forgot Password by an
emailed link all end on Recovery's done page. What that page may say is
handed over in the browser's session under one key, written and read only
here, so no feature writes another feature's session keys. It is shown
once: a reload finds nothing and goes home.
"""

from __future__ import annotations

from typing import Literal, cast, get_args

from flask import redirect, session
from werkzeug.wrappers import Response

from sspm.web.routing import link

#: What was done: a password set without the old one ("forgot"), or an account unlocked.
Done = Literal["forgot", "unlock"]

_KEY = "recovery_done"
_DONE_PAGE = "recovery.done"


def show_done(what: Done) -> Response:
    """Send the browser to the done page, which will say ``what`` was done."""
    session[_KEY] = what
    return redirect(link(_DONE_PAGE), code=303)


def take_done() -> Done | None:
    """What the done page is to say, once; None when nothing was just done here."""
    what = session.pop(_KEY, None)
    return cast(Done, what) if what in get_args(Done) else None
