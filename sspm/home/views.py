"""The landing page: where a user picks what they came to do."""

from __future__ import annotations

from flask import Blueprint, render_template

from sspm.web import page

bp = Blueprint("home", __name__)


@page(bp, "/")
def index(mobile: bool) -> str:
    return render_template("home.html")
