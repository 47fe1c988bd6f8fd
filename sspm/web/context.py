"""What a view reaches for: the services of the app serving this request."""

from __future__ import annotations

from typing import cast

from flask import current_app

from sspm.infra.services import Services


def services() -> Services:
    """The outside systems of the app serving this request."""
    return cast(Services, current_app.extensions["sspm"])
