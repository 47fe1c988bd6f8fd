"""The new-password rules a page shows and a use case enforces, read once per page.

Every page that sets a password (Change Password, the home page's copy of
its form, Forgot Password by questions or by link) asks the same
directory-backed rules, so they are read here, once, not in one feature
that the others would then have to import.
"""

from __future__ import annotations

from connectors.directory import DirectoryError
from sspm.policy.passwords import Rules
from sspm.policy.reasons import directory_failed
from sspm.web.context import services


def current_rules() -> Rules | None:
    """The rules to show and enforce; None when the directory cannot be read (logged, once, as everywhere)."""
    the = services()
    try:
        return Rules.from_policy(the.directory.policy(), the.settings.min_strength)
    except DirectoryError as exc:
        directory_failed(exc, "read the password policy")
        return None
