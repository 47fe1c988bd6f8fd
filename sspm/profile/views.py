"""HTTP for the profile: at ``/profile`` (and ``/m/profile``) for a signed-in user, at ``/staff/profile`` for staff.

Staff are directory accounts too: the same pages serve them inside the
console (its frame, its sign-out), each page asking its own realm who is
signed in (sspm.web.auth decides by path). The link that confirms a new
login email is one page for everyone, ``/profile/email/verify``: it
changes the account the link was made for, and only when whoever confirms
is that account (signed in as it, or typing its password there); signed in
as anyone else, it is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from sspm.infra.store import utcnow
from sspm.policy.realm import Realm
from sspm.policy.reasons import Reason
from sspm.profile import service
from sspm.profile.forms import CodeForm, ConfirmForm, ConfirmWithPasswordForm, EmailForm, PhoneForm
from sspm.web.acting import acting
from sspm.web.auth import STAFF_PATH, SignedIn, current_principal, current_user, realm_of_request
from sspm.web.context import services
from sspm.web.limits import guarded_as, name_key, per_ip
from sspm.web.messages import lra_contact, reason_text
from sspm.web.pages import explain, status_for
from sspm.web.routing import View, link, page
from sspm.web.staff import signed_in_staff, staff_member

bp = Blueprint("profile", __name__)

#: An opened confirmation link: the browser keeps a random handle, never the token (see service.open_link).
_OPENED = "email_link"
PAGES = ("index", "email", "phone", "code")


def both(path: str, name: str, **options: Any) -> Callable[[View], View]:
    """Register a view for users at ``path`` and ``/m`` + ``path``, and for staff at ``/staff`` + ``path``."""

    def register(view: View) -> View:
        page(bp, path, endpoint=name, **options)(view)
        bp.add_url_rule(
            STAFF_PATH + path, endpoint=f"staff_{name}", view_func=view, defaults={"mobile": False}, **options
        )
        return view

    return register


# -- limits ------------------------------------------------------------------------------------


def _name_key() -> str:
    """The one per-name bucket sign-in and change count in, for whoever types a password here."""
    principal = current_principal()
    if isinstance(principal, SignedIn):
        return name_key(principal.username)
    member = signed_in_staff() if realm_of_request() is Realm.STAFF else None
    if member is not None:
        return name_key(member.login)
    handle = session.get(_OPENED)
    username = service.opened_username(services().state, handle) if isinstance(handle, str) else None
    return name_key(username) if username else "name:nobody"


#: POSTs limited per address and per account name, in the buckets every password form shares.
guarded = guarded_as(_name_key)


# -- who -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    """The account whose profile this is: the signed-in user's, or the staff member's own."""

    account_id: str
    staff: bool

    def url(self, name: str) -> str:
        return url_for(f"profile.staff_{name}") if self.staff else link(f"profile.{name}")

    @property
    def frame(self) -> dict[str, Any]:
        """What every profile page needs to draw itself in its realm's frame and link its siblings."""
        return {
            "frame": "profile/_staff_frame.html" if self.staff else "profile/_user_frame.html",
            "urls": {name: self.url(name) for name in PAGES},
            "staff": self.staff,
        }


def _owner() -> Owner | Response:
    if realm_of_request() is Realm.STAFF:
        return Owner(staff_member().account_id, staff=True)  # sends anyone else to the staff sign-in
    user = current_user()
    if user is None:
        return redirect(link("signin.form", next=request.endpoint))
    return Owner(user.account_id, staff=False)


def _base() -> str:
    return str(services().settings.directory.provision_base_dn)


# -- pages ---------------------------------------------------------------------------------------


@both("/profile", "index")
def index(mobile: bool) -> tuple[str, int] | Response:
    owner = _owner()
    if isinstance(owner, Response):
        return owner
    the = services()
    found = service.profile_of(the.directory, the.store, the.state, owner.account_id, provision_base=_base())
    if isinstance(found, Reason):
        return render_template("profile/problem.html", message=reason_text(found), **owner.frame), 503
    page_html = render_template(
        "profile/index.html",
        profile=found,
        details=found.details,
        age=found.password_age_days(utcnow()),
        not_editable=reason_text(Reason.CONTACTS_NOT_EDITABLE),
        **owner.frame,
    )
    return page_html, 200


@both("/profile/email", "email", methods=["GET", "POST"])
@guarded
def email(mobile: bool) -> tuple[str, int] | Response:
    owner = _owner()
    if isinstance(owner, Response):
        return owner
    the = services()
    form = EmailForm()
    reason = None
    if form.validate_on_submit():
        reason = service.ask_email_change(
            the.directory,
            the.store,
            the.state,
            the.outbox,
            account_id=owner.account_id,
            address=form.email.data or "",
            password=form.password.data or "",
            lifetime=timedelta(minutes=the.settings.reset_link_minutes),
            provision_base=_base(),
            actor=acting(),
        )
        if reason is None:
            flash(
                _(
                    "We sent a link to your new address. Open it to confirm the change: until then, "
                    "your current address stays the one you sign in and reset your password with."
                )
            )
            return redirect(owner.url("index"), code=303)
    message = explain(form, reason)
    page_html = render_template(
        "profile/email.html", form=form, message=message, minutes=the.settings.reset_link_minutes, **owner.frame
    )
    return page_html, status_for(form, reason)


@both("/profile/phone", "phone", methods=["GET", "POST"])
@guarded
def phone(mobile: bool) -> tuple[str, int] | Response:
    owner = _owner()
    if isinstance(owner, Response):
        return owner
    the = services()
    settings = the.settings
    form = PhoneForm()
    reason = None
    if form.validate_on_submit():
        reason = service.ask_phone_change(
            the.directory,
            the.store,
            the.state,
            the.sms,
            the.mail_templates,
            account_id=owner.account_id,
            typed=form.phone.data or "",
            password=form.password.data or "",
            region=settings.phone_region,
            secret_key=settings.secret_key,
            provision_base=_base(),
            domain=settings.domain_name,
            actor=acting(),
        )
        if reason is None:
            return redirect(owner.url("code"), code=303)
    page_html = render_template("profile/phone.html", form=form, message=explain(form, reason), **owner.frame)
    return page_html, status_for(form, reason)


@both("/profile/phone/code", "code", methods=["GET", "POST"])
@per_ip
def code(mobile: bool) -> tuple[str, int] | Response:
    owner = _owner()
    if isinstance(owner, Response):
        return owner
    the = services()
    settings = the.settings
    form = CodeForm()
    reason = None
    if form.validate_on_submit():
        result = service.confirm_phone(
            the.directory,
            the.store,
            the.state,
            the.outbox,
            the.sms,
            the.mail_templates,
            account_id=owner.account_id,
            code=form.code.data or "",
            secret_key=settings.secret_key,
            domain=settings.domain_name,
            lra=lra_contact(),
            actor=acting(),
        )
        if result.reason is None:
            flash(_("Your mobile number is changed. The mobile app uses the new number from now on."))
            return redirect(owner.url("index"), code=303)
        reason = result.reason
    form.code.data = ""  # a code is never sent back into a page
    waiting = service.code_waiting(the.state, owner.account_id)
    page_html = render_template(
        "profile/code.html",
        form=form,
        waiting=waiting,
        message=explain(form, reason),
        minutes=service.CODE_SECONDS // 60,
        **owner.frame,
    )
    if waiting is None and reason is None:
        return page_html, 410
    return page_html, status_for(form, reason)


# -- the link sent to a new address ---------------------------------------------------------------

_USER_FRAME = Owner("", staff=False)


def _link_gone(message: str | None = None) -> tuple[str, int]:
    session.pop(_OPENED, None)
    return render_template("profile/link_gone.html", message=message, **_USER_FRAME.frame), 410


@page(bp, "/profile/email/verify", methods=["GET", "POST"])
@guarded
def verify_email(mobile: bool) -> tuple[str, int] | Response:
    the = services()
    if request.method == "GET" and "token" in request.args:
        handle = service.open_link(the.store, the.state, request.args["token"][:128])
        if handle is None:
            session.pop(_OPENED, None)
        else:
            session[_OPENED] = handle
        return redirect(link("profile.verify_email"), code=303)
    handle = session.get(_OPENED)
    pending = service.opened(the.store, the.state, handle) if isinstance(handle, str) else None
    if not isinstance(handle, str) or pending is None:
        return _link_gone()
    user = current_user()
    if user is not None and user.account_id != pending.account_id:
        # The link names another account than the one signed in here: it changes neither.
        refused = service.refuse_other_account(the.store, pending, user.account_id, actor=acting())
        return render_template("profile/wrong_account.html", message=reason_text(refused), **_USER_FRAME.frame), 403
    form = ConfirmForm() if user is not None else ConfirmWithPasswordForm()
    reason = None
    if form.validate_on_submit():
        done = service.confirm_email(
            the.directory,
            the.store,
            the.state,
            the.outbox,
            handle=handle,
            signed_in=user.account_id if user is not None else None,
            password=form.password.data or "" if isinstance(form, ConfirmWithPasswordForm) else "",
            actor=acting(),
        )
        if done.reason is None:
            session.pop(_OPENED, None)
            flash(_("Your new login email is confirmed. From now on, sign in and reset your password with it."))
            return redirect(link("profile.index" if user is not None else "signin.form"), code=303)
        if done.reason in (Reason.LINK_GONE, Reason.EMAIL_TAKEN, Reason.CONTACTS_NOT_EDITABLE):
            return _link_gone(None if done.reason is Reason.LINK_GONE else reason_text(done.reason))
        if done.reason is Reason.WRONG_ACCOUNT:  # signed in as someone else meanwhile
            page_html = render_template(
                "profile/wrong_account.html", message=reason_text(done.reason), **_USER_FRAME.frame
            )
            return page_html, 403
        reason = done.reason
    page_html = render_template(
        "profile/verify.html",
        form=form,
        pending=pending,
        signed_in=user is not None,
        message=explain(form, reason),
        **_USER_FRAME.frame,
    )
    return page_html, status_for(form, reason)
