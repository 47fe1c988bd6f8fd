"""Routing shared by every feature: each page exists at ``/x`` and ``/m/x``.

``/m`` is the phone entry users already bookmark. It is the same view and
the same template, laid out for a phone; this module registers both rules
and makes ``link()`` keep the user on the entry they came in by.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, g, request, url_for

View = Callable[..., Any]


def page(bp: Blueprint, path: str, **options: Any) -> Callable[[View], View]:
    """Register a view at ``path`` and at ``/m`` + ``path``."""

    def register(view: View) -> View:
        mobile_path = "/m" + (path if path != "/" else "")
        bp.add_url_rule(path, view_func=view, defaults={"mobile": False}, **options)
        bp.add_url_rule(mobile_path, view_func=view, defaults={"mobile": True}, **options)
        return view

    return register


def is_mobile() -> bool:
    """By path, not by matched route, so a 404 under /m keeps the phone layout."""
    return request.path == "/m" or request.path.startswith("/m/")


def client_ip() -> str:
    """The client's address (ProxyFix has applied SSPM_TRUSTED_PROXIES already)."""
    return request.remote_addr or "unknown"


def link(endpoint: str, **values: Any) -> str:
    """url_for that stays on the entry (desktop or /m) the user is on."""
    values.setdefault("mobile", getattr(g, "mobile", False))
    return url_for(endpoint, **values)
