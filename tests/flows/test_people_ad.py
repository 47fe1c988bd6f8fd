"""People's records on Active Directory (a real Samba AD DC): the essential path, kept to one story since
each DC costs seconds. Create provisions a disabled account with no password in the Staff OU, with its
organization in ``company``; its owner's set-up makes it usable; ending disables it and signs it out;
re-activating enables it again; a hostile name stays text in its own CN.
"""

from __future__ import annotations

from flask import Flask

from connectors import dn
from connectors.directory import Outcome
from lab import SeedAccount
from lab.samba import SambaDC
from lab.seed import ST_MARY
from sspm.account import audit
from sspm.infra.store import PersonRecord
from sspm.policy.actor import Actor
from tests.flows.test_helpdesk import agent, mails_to, run_jobs, text_of, with_probe
from tests.flows.test_people import PASSWORD, SETUP_LINK, employee, record_id_of, submit
from tests.support import Backing, services_of
from tests.support.flows import AppFactory, csrf_token


def test_on_active_directory_a_record_is_created_set_up_ended_and_re_activated(
    build_app: AppFactory, samba_dc: SambaDC, accounts: dict[str, SeedAccount], backing: Backing
) -> None:
    app: Flask = with_probe(build_app(samba_dc))
    admin = agent(app, accounts["expiring"], "admin", ST_MARY)
    hostile = "Dupont, Jr+sn=x #1"
    created = submit(admin, "/staff/people/employees/new", employee(family_name=hostile, manager=""))
    assert created.status_code == 303, created.get_data(as_text=True)
    record_id = record_id_of(created)
    the = services_of(app)
    with the.store.session() as session:
        record = session.get(PersonRecord, record_id)
    assert record is not None and record.username == "jdupontjrsnx1"
    details = the.directory.account_details(record.account_id or "")
    assert details is not None
    assert (details.login, details.surname, details.organization, details.disabled) == (
        "jdupontjrsnx1",
        hostile,
        ST_MARY,
        True,
    )
    assert dn.same(dn.parent(details.dn), f"OU=Staff,{samba_dc.people_dn}")
    assert the.directory.verify_password(record.username, PASSWORD)[1].outcome is not Outcome.OK

    run_jobs(app)
    assert SETUP_LINK.search(text_of(mails_to(backing, record.work_email)[0]))
    account = the.directory.get_account(record.account_id or "")
    assert account is not None
    assert the.directory.activate_account(account, PASSWORD) is Outcome.OK  # what /setup does
    audit.record(the.store, audit.Action.SETUP, "ok", actor=Actor.user(account.id, "127.0.0.1"), account=account)
    assert the.directory.verify_password(record.username, PASSWORD)[1].outcome is Outcome.OK

    path = f"/staff/people/employees/{record_id}"
    confirm = admin.get(f"{path}/end")
    ended = admin.post(f"{path}/end", {"csrf_token": csrf_token(confirm.get_data(as_text=True))})
    assert ended.status_code == 303
    assert the.directory.verify_password(record.username, PASSWORD)[1].outcome is Outcome.DISABLED

    page = admin.get(path)
    again = admin.post(f"{path}/reactivate", {"csrf_token": csrf_token(page.get_data(as_text=True))})
    assert again.status_code == 303
    assert the.directory.verify_password(record.username, PASSWORD)[1].outcome is Outcome.OK
