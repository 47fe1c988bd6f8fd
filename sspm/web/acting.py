"""Who acts in this request: the one place a view learns it, as one ``Actor``.

Every use case is told who acts instead of loose ``source_ip=`` and
``language=``, so the audit trail keeps "jsmith changed her own password"
(a signed-in user, or an anonymous visitor who proved it) apart from a
staff member acting on jsmith's account. Views ask here, once per use
case call, so none can hand a use case half of it.

Its own module rather than sspm.web.context: it reads the signed-in
principal (sspm.web.auth), which itself reads the services from there.
"""

from __future__ import annotations

from dataclasses import replace

from flask_babel import get_locale

from sspm.infra.state import StateUnavailable
from sspm.policy.actor import Actor, ActorKind
from sspm.policy.roles import highest_role
from sspm.web.auth import actor_for, current_principal
from sspm.web.routing import client_ip
from sspm.web.staff import signed_in_staff


def acting() -> Actor:
    """The signed-in user or staff member, else an anonymous visitor; at the client's address, in the page's language.

    With Redis away nobody can be known as signed in, so the request is
    anonymous: the forms that work without Redis (Change Password) must
    still work, and the trail says truthfully that nobody was known.
    """
    try:
        principal = current_principal()
    except StateUnavailable:
        principal = None
    actor = actor_for(principal, client_ip(), str(get_locale()))
    member = signed_in_staff() if actor.kind is ActorKind.STAFF else None
    if member is not None:
        # The session remembers the role it was signed in with; grants change under it (a demotion, a
        # new organization), and the trail names the role held when acting, as the store has it now.
        top = highest_role(member.grants)
        actor = replace(actor, role=top.value if top else "", organizations=tuple(sorted(member.grants.organizations)))
    return actor
