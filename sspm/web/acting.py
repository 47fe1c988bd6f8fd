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

from flask_babel import get_locale

from sspm.infra.state import StateUnavailable
from sspm.policy.actor import Actor
from sspm.web.auth import actor_for, current_principal
from sspm.web.routing import client_ip


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
    return actor_for(principal, client_ip(), str(get_locale()))
