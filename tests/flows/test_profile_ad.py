"""The profile's changes on Active Directory (a Samba DC of the test's own): what the directory then signs in with.

AD's user filter finds an account by sAMAccountName, userPrincipalName or
mail. So a new login email signs in once confirmed, and the old one stops,
unless the old one was also the account's UPN (AD keeps that: it is not
SSPM's to change). Éloïse's address differs from her UPN, so the story
shows both truths at once. Her mobile goes to AD's ``mobile`` attribute.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from lab import DEMO_ACCOUNTS, samba
from lab.seed import MAIL_DOMAIN
from lab.sms import read_messages
from sspm.policy.reasons import Reason
from tests.flows.test_email import EMAIL_ENV, messages_to, run_jobs
from tests.flows.test_profile import ask_email, ask_phone, code_in, confirm_link, details, finds, give_code, verify_link
from tests.support import Backing
from tests.support.flows import AppFactory, Visitor, reason_in, says, sign_in

ELOISE = next(a for a in DEMO_ACCOUNTS if a.uid == "éloïse")
NEW_ADDRESS = f"eloise.new@{MAIL_DOMAIN}"


def test_on_active_directory_the_confirmed_address_signs_in_and_the_old_one_no_longer_does(
    build_app: AppFactory, samba_dc: samba.SambaDC, backing: Backing, tmp_path: Path
) -> None:
    app: Flask = build_app(samba_dc, SSPM_SMS_DIR=str(tmp_path / "sms"), **EMAIL_ENV)
    visitor = Visitor(app)
    assert sign_in(visitor, ELOISE.uid, ELOISE.password).status_code == 303
    old = ELOISE.mail
    assert old is not None

    assert ask_email(visitor, NEW_ADDRESS, ELOISE.password).status_code == 303
    run_jobs(app)
    (link_mail,) = messages_to(backing.mailbox, NEW_ADDRESS)
    assert finds(app, old) == ELOISE.uid and finds(app, NEW_ADDRESS) is None, "nothing changes before the proof"

    assert confirm_link(visitor, verify_link(link_mail)).status_code == 303
    assert details(app, ELOISE.uid)[0] == NEW_ADDRESS
    assert sign_in(Visitor(app), NEW_ADDRESS, ELOISE.password).status_code == 303
    refused = sign_in(Visitor(app), old, ELOISE.password)
    assert refused.status_code == 422 and says(refused, reason_in(app, Reason.BAD_CREDENTIALS))
    # Her userPrincipalName is AD's own, and still signs her in.
    assert finds(app, f"{ELOISE.uid}@{MAIL_DOMAIN}") == ELOISE.uid

    # The mobile number, proved by the texted code, lands in AD's mobile attribute.
    assert ask_phone(visitor, "+33 6 12 34 56 78", ELOISE.password).status_code == 303
    (text,) = [m.text for m in read_messages(tmp_path / "sms") if m.to == "+33612345678"]
    assert give_code(visitor, code_in(text)).status_code == 303
    assert details(app, ELOISE.uid)[1] == "+33612345678"
