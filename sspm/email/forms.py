"""Forms for Forgot Password by email."""

from __future__ import annotations

from flask_wtf import FlaskForm

from sspm.web import fields


class RequestLinkForm(FlaskForm):
    # Named "username" so the per-name attempt limit counts it.
    username = fields.username(or_email=True)
