"""The landing page: where a user picks what they came to do.

Changing a password is what most come for, so its form is right here; it
is sent to Change Password's own view, which checks and answers it.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from sspm.web.forms import ChangePasswordForm
from sspm.web.routing import page
from sspm.web.rules import current_rules

bp = Blueprint("home", __name__)


@page(bp, "/")
def index(mobile: bool) -> str:
    return render_template("home.html", form=ChangePasswordForm(), rules=current_rules())
