"""One person, many spellings: an attacker comparing how SSPM answers them.

The directory finds ``lsmith`` however it is typed: in capitals, in fullwidth
or circled letters, with spaces around, or as the address. If SSPM then
answered an unknown name differently for each spelling (other decoy
questions, another limit), comparing two spellings of a name would tell
whether it has an account. Here every spelling of an enrolled, a
not-enrolled, a disabled and an unknown name is tried, on every form and
limit it reaches, and each kind of name must behave as the others do.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import pytest
from sqlalchemy import select

from connectors import open_directory
from connectors.directory import Directory, Outcome
from lab import SeedAccount, Slapd
from lab.enrollment import DEMO_ANSWERS
from lab.env import LabDirectory
from lab.seed import MAIL_DOMAIN
from sspm.app import create_app
from sspm.infra.store import AccountPreference
from sspm.policy import logins
from tests.flows.test_email import EMAIL_ENV, ask_for_link, messages_to, run_jobs
from tests.flows.test_recovery_security import CountingDirectory, WorkMeter
from tests.support import Backing, services_of, settings_for
from tests.support.flows import (
    NEW_PASSWORD,
    AppFactory,
    Visitor,
    asked,
    csrf_token,
    enroll_fields,
    pool_of,
    seed_enrolled,
    sign_in,
    start,
    verdict,
    without_token,
)

WRONG_PASSWORD = "Wrong-Guess-Harbor-0000"


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def circled(text: str) -> str:
    return "".join(chr(0x24D0 + ord(c) - ord("a")) if "a" <= c <= "z" else c for c in text)


def bold(text: str) -> str:
    return "".join(chr(0x1D41A + ord(c) - ord("a")) if "a" <= c <= "z" else c for c in text)


def mixed(text: str) -> str:
    return "".join(c.upper() if i % 2 else c for i, c in enumerate(text))


#: Ways to type one ASCII user name that the directory (or SSPM) folds onto it.
SPELLINGS: dict[str, Callable[[str], str]] = {
    "as typed": lambda name: name,
    "capitals": str.upper,
    "mixed case": mixed,
    "spaces around": lambda name: f"  {name}\t",
    "ideographic spaces": lambda name: f"\u3000{name}\u3000",
    "fullwidth": fullwidth,
    "fullwidth capitals": lambda name: fullwidth(name.upper()),
    "circled": circled,
    "mathematical bold": bold,
    "the address": lambda name: f"{name}@{MAIL_DOMAIN}",
    "the address in capitals": lambda name: f"{name}@{MAIL_DOMAIN}".upper(),
    "the address in fullwidth": lambda name: fullwidth(f"{name}@{MAIL_DOMAIN}"),
}


@pytest.fixture(params=["openldap", "ad"])
def lab_directory(request: pytest.FixtureRequest) -> LabDirectory:
    server: LabDirectory = request.getfixturevalue("slapd" if request.param == "openldap" else "samba_dc")
    return server


# -- what the directory folds, and what SSPM keys on -----------------------------------------------


def test_sspm_keys_on_exactly_the_spellings_that_find_an_account(
    lab_directory: LabDirectory, accounts: dict[str, SeedAccount]
) -> None:
    """Every spelling that finds lsmith has lsmith's key, and no other spelling has it."""
    settings = settings_for(lab_directory)
    domains = settings.login_mail_domains
    assert domains == (MAIL_DOMAIN,), "by default, the domain the base DN spells"
    directory = open_directory(settings.directory_kind, settings.directory)
    laura, eloise = accounts["other"], accounts["nonascii"]
    folded = {
        laura.uid: [spell(laura.uid) for spell in SPELLINGS.values()]
        + ["lſmith", "LSMİTH", "ˡsmith", "ℓsmith", "ⅼsmith", "Ⅼsmith", "Ⓛsmith", "𝐋smith", f"ｌsmith@{MAIL_DOMAIN}"],
        eloise.uid: ["éloïse", "ÉLOÏSE", "ÉloÏse", " éloïse ", unicodedata.normalize("NFD", "ÉLOÏSE")],
    }
    apart = {
        laura.uid: [
            *("l smith", "lsmıth", "lsmith\u200b", "lsmith\u00ad", "lsmiths", "jsmith"),
            *("lsmith@elsewhere.example", "lsmith@partners", f"lsmith@@{MAIL_DOMAIN}"),
        ],
        eloise.uid: ["eloise", "eloïse", "éloise"],
    }
    try:
        ids = {uid: _id(directory, uid) for uid in folded}
        for uid in folded:
            for typed in folded[uid] + apart[uid]:
                found = directory.find_account(logins.spelling(typed))
                same_key = logins.canonical(typed, domains) == uid
                assert (found is not None and found.id == ids[uid]) == same_key, typed
                assert same_key == (typed in folded[uid]), typed
                # SSPM folds at least every spelling the directory itself folds.
                raw = directory.find_account(typed)
                if raw is not None and raw.id == ids[uid]:
                    assert same_key, typed
        if settings.directory_kind == "openldap":
            # The premise: slapd's own caseIgnoreMatch already finds lsmith by these.
            for typed in ("ｌｓｍｉｔｈ", "ⓛⓢⓜⓘⓣⓗ", "LSMİTH", f"LSMITH@{MAIL_DOMAIN}"):
                raw = directory.find_account(typed)
                assert raw is not None and raw.id == ids[laura.uid], typed
    finally:
        directory.close()


def test_an_address_and_its_local_part_find_the_same_account_or_none(
    lab_directory: LabDirectory, accounts: dict[str, SeedAccount]
) -> None:
    """SSPM keys ``x@partners.example`` on ``x``: the directory must find by one what it finds by the other.

    Otherwise, for an account whose address is not its user name (éloïse's is
    eloise.cote@), the address would meet the account and the bare local part
    a decoy, where an unknown address meets one decoy both ways: comparing the
    two would tell which addresses have accounts.
    """
    settings = settings_for(lab_directory)
    directory = open_directory(settings.directory_kind, settings.directory)
    unknown = f"nobody.here@{MAIL_DOMAIN}"
    try:
        for address in [person.mail for person in accounts.values() if person.mail] + [unknown]:
            local = address.partition("@")[0]
            for one, other in ((address, local), (address.upper(), fullwidth(local))):
                assert logins.canonical(one, settings.login_mail_domains) == logins.canonical(
                    other, settings.login_mail_domains
                ), one
                found = [directory.find_account(logins.spelling(typed)) for typed in (one, other)]
                ids = [account.id if account else None for account in found]
                assert ids[0] == ids[1], (one, other)
                assert (ids[0] is None) == (address == unknown), address
    finally:
        directory.close()


def _id(directory: Directory, uid: str) -> str:
    account = directory.find_account(uid)
    assert account is not None, uid
    return account.id


# -- Forgot Password: the same questions for every spelling, whoever it is ------------------------------


def test_every_spelling_of_any_name_meets_the_same_questions_enrolled_or_not_known_or_not(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    # Generous limits: this test starts four dozen challenges from one address.
    app = build_app(slapd, SSPM_LIMIT_PER_ACCOUNT="1000 per minute", SSPM_LIMIT_PER_IP="1000 per minute")
    laura, john, ravi = accounts["other"], accounts["normal"], accounts["disabled"]
    seed_enrolled(app, laura)
    names = {"enrolled": laura.uid, "not enrolled": john.uid, "disabled": ravi.uid, "unknown": "jsmyth"}

    for kind, name in names.items():
        pool = pool_of(app, name)
        assert len(pool) == 3, kind
        if kind == "enrolled":
            assert pool == set(DEMO_ANSWERS)
        for how, spell in SPELLINGS.items():
            typed = spell(name)
            assert pool_of(app, typed) == pool, f"{kind}, {how}"
            visitor = Visitor(app)
            assert start(visitor, "forgot", typed).status_code == 303, f"{kind}, {how}"
            questions = asked(app, visitor.get("/recovery/challenge"))
            assert len(set(questions)) == 2 and set(questions) <= pool, f"{kind}, {how}"


# -- limits: one count per name, on every form --------------------------------------------------------


def test_one_count_per_name_across_its_spellings_and_every_form_that_checks_who_you_are(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    app = build_app(slapd, SSPM_LIMIT_PER_ACCOUNT="4 per 30 minutes")
    john = accounts["normal"]

    def five_tries(name: str) -> list[int]:
        visitor = Visitor(app)
        return [
            sign_in(visitor, fullwidth(name), WRONG_PASSWORD).status_code,
            visitor.change_password(name.upper(), WRONG_PASSWORD, NEW_PASSWORD).status_code,
            start(visitor, "forgot", f"{name}@{MAIL_DOMAIN}").status_code,
            start(visitor, "unlock", circled(name)).status_code,
            # The fifth carries the right password, in yet another spelling: it is not even checked.
            sign_in(visitor, f"  {mixed(name)} ", john.password).status_code,
        ]

    assert five_tries(john.uid) == five_tries("jsmyth") == [422, 422, 303, 303, 429]
    account = services_of(app).directory.find_account(john.uid)
    assert account is not None
    assert services_of(app).directory.status(account).failures == 2, "two wrong binds, and the right one never made"
    assert verdict(services_of(app).directory, john.uid, john.password) is Outcome.OK


def test_re_confirming_the_password_at_enrollment_counts_in_the_same_bucket(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    app = build_app(slapd, SSPM_LIMIT_PER_ACCOUNT="3 per 30 minutes")
    john = accounts["normal"]
    visitor = Visitor(app)
    assert sign_in(visitor, john.uid, john.password).status_code == 303

    # Someone at john's unlocked desk guesses at the password the enrollment page asks for.
    guesses = [
        visitor.submit("/enroll/edit", enroll_fields(DEMO_ANSWERS, WRONG_PASSWORD)).status_code for _ in range(3)
    ]

    assert guesses == [422, 422, 429]
    assert Visitor(app).change_password(fullwidth(john.uid), john.password, NEW_PASSWORD).status_code == 429
    assert verdict(services_of(app).directory, john.uid, john.password) is Outcome.OK


# -- reset emails: a mailbox cannot be flooded through spellings -----------------------------------------


def test_a_dozen_reset_requests_in_as_many_spellings_deliver_no_more_than_the_limit(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount], backing: Backing
) -> None:
    app = build_app(slapd, **EMAIL_ENV, SSPM_LIMIT_EMAIL_PER_ACCOUNT="3 per hour")
    john = accounts["normal"]
    pages = {}
    for address, name in (("198.51.100.1", john.uid), ("198.51.100.2", "jsmyth")):
        visitor = Visitor(app)
        visitor.client.environ_base["REMOTE_ADDR"] = address
        pages[name] = [ask_for_link(visitor, spell(name)) for spell in SPELLINGS.values()]

    statuses = {name: [page.status_code for page in seen] for name, seen in pages.items()}
    assert statuses[john.uid] == statuses["jsmyth"] == [200] * 3 + [429] * (len(SPELLINGS) - 3)
    run_jobs(app)
    assert len(messages_to(backing.mailbox, john.mail)) == 3


def test_an_account_reached_by_two_names_still_gets_no_more_emails_than_the_limit(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount], backing: Backing
) -> None:
    """éloïse's address is not her user name: the two count as two names, but one mailbox."""
    app = build_app(slapd, **EMAIL_ENV, SSPM_LIMIT_EMAIL_PER_ACCOUNT="3 per hour")
    eloise = accounts["nonascii"]
    assert eloise.mail and not eloise.mail.startswith(eloise.uid + "@")
    people = {
        eloise.uid: [
            *("éloïse", "ÉLOÏSE", unicodedata.normalize("NFD", "ÉLOÏSE")),
            *(eloise.mail, eloise.mail.upper(), fullwidth(eloise.mail)),
        ],
        "zoé": [
            *("zoé", "ZOÉ", unicodedata.normalize("NFD", "ZOÉ")),
            *(f"zoe.roy@{MAIL_DOMAIN}", f"ZOE.ROY@{MAIL_DOMAIN}", fullwidth(f"zoe.roy@{MAIL_DOMAIN}")),
        ],
    }
    seen = {}
    for address, (person, spellings) in zip(("198.51.100.1", "198.51.100.2"), people.items(), strict=True):
        visitor = Visitor(app)
        visitor.client.environ_base["REMOTE_ADDR"] = address
        seen[person] = [ask_for_link(visitor, typed) for typed in spellings]

    pages = {(page.status_code, without_token(page.get_data(as_text=True))) for sent in seen.values() for page in sent}
    assert len(pages) == 1 and next(iter(pages))[0] == 200, "the same page, every time, for both"
    run_jobs(app)
    assert len(messages_to(backing.mailbox, eloise.mail)) == 3, "past the limit, nothing more is queued"


def test_asking_for_a_reset_email_costs_the_same_work_whoever_is_named(
    slapd: Slapd, accounts: dict[str, SeedAccount]
) -> None:
    settings = settings_for(slapd, **EMAIL_ENV)
    directory = CountingDirectory(open_directory(settings.directory_kind, settings.directory))
    app = create_app(settings, directory=directory)
    meter = WorkMeter(app, directory)
    john, laura, ravi = accounts["normal"], accounts["other"], accounts["disabled"]
    # Each a first request for its name and its account: a counter's first hit costs one more command.
    cases = {
        "warm-up": "warm-up",
        "an account": john.uid,
        "an account by its address": laura.mail,
        "a disabled account": ravi.uid,
        "an unknown name": "nobody",
        "an unknown address": f"nobody.else@{MAIL_DOMAIN}",
        "an unknown name in fullwidth": fullwidth("someone"),
    }
    seen = {}
    try:
        for case, typed in cases.items():
            visitor = Visitor(app)
            form = visitor.get("/forgot/email")
            fields = {"csrf_token": csrf_token(form.get_data(as_text=True)), "username": typed}
            page, work = meter.measure(lambda v=visitor, f=fields: v.post("/forgot/email", f))
            seen[case] = (work, page.status_code, without_token(page.get_data(as_text=True)))
    finally:
        services_of(app).close()
    del seen["warm-up"]

    works = {case: facts[0] for case, facts in seen.items()}
    assert len(set(works.values())) == 1, works
    assert len({facts[1:] for facts in seen.values()}) == 1, "the same page"
    work = next(iter(works.values()))
    assert dict(work.directory) == {"find_account": 1}
    assert work.statements and work.redis_commands


def test_the_language_is_remembered_by_the_worker_that_sends_not_by_the_request(
    build_app: AppFactory, slapd: Slapd, accounts: dict[str, SeedAccount], backing: Backing
) -> None:
    """Writing it in the request would cost a found account more than an unknown name."""
    app = build_app(slapd, **EMAIL_ENV)
    john = accounts["normal"]
    for typed in (fullwidth(john.uid), "nobody"):
        assert ask_for_link(Visitor(app), typed, lang="fr").status_code == 200

    def languages() -> list[tuple[str, str]]:
        with services_of(app).store.session() as session:
            return [(row.account_id, row.language) for row in session.scalars(select(AccountPreference))]

    assert languages() == [], "nothing is written by the request itself"
    run_jobs(app)
    assert languages() == [(_id(services_of(app).directory, john.uid), "fr")]
    assert len(messages_to(backing.mailbox, john.mail)) == 1


@pytest.mark.parametrize("spelling", ["fullwidth", "circled", "capitals", "the address in capitals"])
def test_a_name_signs_in_by_every_spelling_that_recovers_it_on_both_directories(
    lab_directory: LabDirectory, accounts: dict[str, SeedAccount], build_app: AppFactory, spelling: str
) -> None:
    """Sign-in asks the directory the same spelling recovery does, so Active
    Directory (which folds only case) does not refuse at sign-in a name it
    accepts at Forgot Password."""
    laura = accounts["other"]
    visitor = Visitor(build_app(lab_directory))
    page = sign_in(visitor, SPELLINGS[spelling](laura.uid), laura.password)
    assert page.status_code in (302, 303), page.status
    assert visitor.follow(page).status_code == 200
