"""The one canonical login, without a directory: which spellings fold together, and which must not."""

from __future__ import annotations

import hashlib

import pytest

from sspm.policy.logins import app_mail_domains, canonical, configure, digest, spelling

DOMAINS = ("partners.example",)


@pytest.mark.parametrize(
    "typed",
    [
        "lsmith",
        "LSmith",
        "LSMITH",
        "ｌｓｍｉｔｈ",  # fullwidth, as a phone's CJK keyboard types it
        "ＬＳＭＩＴＨ",
        "ⓛsmith",  # a compatibility form NFKC takes back to a letter
        "ᴸsmith",  # lower-case until NFKC makes it a capital: folded until stable
        "LSMİTH",  # capital I with a dot: a plain "i", as the directory maps it
        "  lsmith\t",
    ],
)
def test_spellings_the_directory_folds_together_have_one_spelling(typed: str) -> None:
    assert spelling(typed) == "lsmith"


def test_the_long_s_and_the_kelvin_sign_are_their_compatibility_letters() -> None:
    assert spelling("jſmith") == "jsmith"
    assert spelling("\u212asmith") == "ksmith"


def test_any_run_of_whitespace_is_one_space() -> None:
    assert spelling("l  smith") == "l smith"
    assert spelling("l\u00a0smith") == "l smith"
    assert spelling("l \t smith") == "l smith"


def test_case_is_lowered_letter_by_letter_without_a_final_sigma() -> None:
    assert spelling("ΟΔΥΣΣΕΑΣ") == "οδυσσεασ"


def test_spelling_is_not_broader_than_the_directory() -> None:
    """ß is a lower-case letter of its own to the directory: casefolding it to "ss" would fold two names."""
    assert spelling("Straße") == "straße"
    assert spelling("Straße") != spelling("Strasse")


def test_an_address_at_a_mail_domain_is_keyed_on_its_local_part() -> None:
    assert canonical("jsmith@partners.example", DOMAINS) == "jsmith"
    assert canonical("JSmith@PARTNERS.EXAMPLE", DOMAINS) == "jsmith"
    assert canonical("ｊｓｍｉｔｈ＠ｐａｒｔｎｅｒｓ.ｅｘａｍｐｌｅ", DOMAINS) == "jsmith"
    assert canonical("jsmith@partners.example", ("Partners.Example",)) == "jsmith"


def test_an_address_elsewhere_or_without_domains_stays_whole() -> None:
    assert canonical("jsmith@elsewhere.example", DOMAINS) == "jsmith@elsewhere.example"
    assert canonical("jsmith@partners.example") == "jsmith@partners.example"
    assert canonical("jsmith@sub.partners.example", DOMAINS) == "jsmith@sub.partners.example"


def test_an_address_with_no_local_part_is_not_emptied() -> None:
    assert canonical("@partners.example", DOMAINS) == "@partners.example"


def test_canonical_folds_like_spelling() -> None:
    assert canonical("  ＬＳＭＩＴＨ ", DOMAINS) == spelling("  ＬＳＭＩＴＨ ") == "lsmith"


def test_the_digest_is_of_the_canonical_login() -> None:
    assert digest("ＪＳmith@Partners.Example", DOMAINS) == hashlib.sha256(b"jsmith").hexdigest()
    assert digest("jsmith", DOMAINS) != digest("jsmith2", DOMAINS)


def test_a_lone_surrogate_can_be_digested() -> None:
    """Typed text is not always well-formed Unicode; keying on it must not raise."""
    assert len(digest("js\udcffmith")) == 64


def test_the_mail_domains_are_the_ones_the_process_was_configured_with() -> None:
    """Set once by build(), so the web app, the worker and the CLI digest a name alike."""
    before = app_mail_domains()
    try:
        configure(["partners.example", "mail.partners.example"])
        assert app_mail_domains() == ("partners.example", "mail.partners.example")
        assert canonical("JSmith@Mail.Partners.Example", app_mail_domains()) == "jsmith"
        configure(())
        assert app_mail_domains() == ()
    finally:
        configure(before)
