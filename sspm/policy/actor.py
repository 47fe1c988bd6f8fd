"""Who is acting: one value a use case receives instead of loose ``source_ip=`` and ``language=``.

The audit trail must tell "jsmith reset her own password" from "helpdesk
agent X reset jsmith's password" from "the nightly sync disabled jsmith",
so every use case will be told who acts, as one immutable value. Today the
self-service flows act for an anonymous visitor (proven or not) and the
worker acts as a job; staff, the API and operators come next.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ActorKind(StrEnum):
    """The closed list of who can act; stored as is in the audit trail."""

    USER = "user"  # a domain user, signed in, acting on their own account
    STAFF = "staff"  # helpdesk, administrators, managers: acting on someone else's account
    API = "api"  # a client of SSPM's API
    JOB = "job"  # a background or scheduled job (the email worker, a sync)
    OPERATOR = "operator"  # someone at the server's command line (python -m sspm ...)
    ANONYMOUS = "anonymous"  # a visitor not signed in: sign-in, Forgot Password, a reset link


@dataclass(frozen=True)
class Actor:
    """Who acts, from where, in which language; never a credential.

    ``id`` is the actor's immutable id where there is one (a directory
    account's id, a job's name); ``role`` and ``organizations`` are what
    staff permissions will be decided on.
    """

    kind: ActorKind
    id: str | None = None
    role: str | None = None
    organizations: tuple[str, ...] = ()
    client_address: str = ""
    language: str = ""

    @property
    def is_the_owner(self) -> bool:
        """True when whoever acts is (or claims to be) the account's owner: self-service.

        Self-service speaks the visitor's language; when staff, a job or an
        operator act on someone's account, its owner is told in their own.
        """
        return self.kind in (ActorKind.USER, ActorKind.ANONYMOUS)

    @classmethod
    def anonymous(cls, client_address: str, language: str = "") -> Actor:
        return cls(ActorKind.ANONYMOUS, client_address=client_address, language=language)

    @classmethod
    def user(cls, account_id: str, client_address: str, language: str = "") -> Actor:
        return cls(ActorKind.USER, id=account_id, client_address=client_address, language=language)

    @classmethod
    def job(cls, name: str) -> Actor:
        return cls(ActorKind.JOB, id=name)

    @classmethod
    def operator(cls, name: str) -> Actor:
        return cls(ActorKind.OPERATOR, id=name)
