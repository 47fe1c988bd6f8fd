"""The two kinds of sign-in: a domain user's and a staff member's.

They are kept apart everywhere (their own cookie, their own records in
Redis, their own timeouts), so that being signed in as one never counts as
being signed in as the other, even in one browser holding both.
"""

from __future__ import annotations

from enum import StrEnum


class Realm(StrEnum):
    USER = "user"  # a domain user, on their own account (sign-in, enroll, change)
    STAFF = "staff"  # helpdesk, administrators, managers, under /staff
