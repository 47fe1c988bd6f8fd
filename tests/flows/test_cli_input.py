"""What an operator types at ``python -m sspm`` is checked before anything is asked of anyone.

A login of 100,000 characters (a page pasted by mistake) was sent to the
directory, and the operator was told "the directory stopped answering": they
went looking at a server that was fine. Now a login, an email or an
organization that cannot be anyone's is refused in one line that says what
is wrong with it, with the bound the web forms use (``logins.MAX_LENGTH``),
and a number or a day typed wrong is refused without the whole of it
echoed back. The directory is stopped in the stories that say "before the
directory is asked": the answer can only come from the input.
"""

from __future__ import annotations

import subprocess

from lab import Slapd
from sspm.policy import logins, organizations
from tests.flows.test_outsider_operator import said_in_one_line, sspm
from tests.support import Backing

PASTED = 100_000
#: The commands that take a login (grant and revoke also a role and an organization).
WITH_A_LOGIN = (
    ("staff", "grant", "{login}", "admin", "--organization", "st-mary"),
    ("staff", "revoke", "{login}", "admin", "--organization", "st-mary"),
    ("staff", "reset-2fa", "{login}"),
)


def typed(command: tuple[str, ...], login: str) -> list[str]:
    return [login if word == "{login}" else word for word in command]


def short_lines(done: subprocess.CompletedProcess[str]) -> bool:
    """Every line of what the command said fits a terminal's scroll-back (no pasted page echoed)."""
    return all(len(line) <= 200 for line in done.stderr.splitlines())


def test_a_pasted_page_as_a_login_or_email_is_refused_in_one_line_before_the_directory_is_asked(
    slapd: Slapd, backing: Backing
) -> None:
    """The directory is down, and still the operator hears about the login, not about the directory."""
    slapd.stop()
    over = logins.MAX_LENGTH + 1
    for login in ("a" * PASTED, "j" * over, "a" * (PASTED - 17) + "@partners.example"):
        for command in WITH_A_LOGIN:
            done = sspm(slapd, backing, *typed(command, login))
            says = f"sspm: the login has {len(login)} characters, more than the {logins.MAX_LENGTH} any can have: "
            said_in_one_line(done, 2, says)


def test_a_login_nobody_can_have_is_refused_in_one_line_saying_why(slapd: Slapd, backing: Backing) -> None:
    """Empty, blank, a line break pasted inside, or bytes that are not UTF-8 (a traceback, before)."""
    slapd.stop()
    cases = {
        "": "sspm: the login is empty",
        "   ": "sspm: the login is empty",
        "js\nmith": "sspm: the login 'js\\nmith' holds control characters",
        "js\tmith": "sspm: the login 'js\\tmith' holds control characters",
        "js\udcffmith": "sspm: the login 'js\\udcffmith' is not UTF-8 text",  # the byte 0xff, as argv carries it
    }
    for login, says in cases.items():
        for command in WITH_A_LOGIN:
            said_in_one_line(sspm(slapd, backing, *typed(command, login)), 2, says)


def test_the_longest_login_the_web_takes_is_still_looked_up(slapd: Slapd, backing: Backing) -> None:
    """The bound is the web forms' own: a login at it is asked of the directory, as on the sign-in page."""
    longest = "j" * logins.MAX_LENGTH
    done = sspm(slapd, backing, "staff", "reset-2fa", longest)
    assert (done.returncode, done.stderr) == (1, f"sspm: no account {longest!r} in the directory\n")


def test_an_absurd_organization_is_refused_and_nothing_is_granted(slapd: Slapd, backing: Backing) -> None:
    """A 100,000-character organization was granted and stored, for a console to show."""
    for organization, says in (
        ("o" * PASTED, f"sspm: the organization has {PASTED} characters, more than the {organizations.MAX_LENGTH}"),
        ("st\udcffmary", "sspm: the organization 'st\\udcffmary' is not UTF-8 text"),
    ):
        done = sspm(slapd, backing, "staff", "grant", "jsmith", "admin", "--organization", organization)
        said_in_one_line(done, 2, says)
    assert sspm(slapd, backing, "staff", "list").stdout == ""


def test_a_number_a_day_or_a_queue_typed_wrong_is_refused_without_echoing_all_of_it(
    slapd: Slapd, backing: Backing
) -> None:
    """argparse's usage, then one line naming the argument, with a glimpse of what was typed."""
    for arguments, says in (
        (("scheduler", "--tick", "9" * 5000), "is not a number of seconds above 0 and at most 60"),
        (("audit", "archive", "--before", "2026-" * 20_000, "trail.jsonl"), "is not a day written YYYY-MM-DD"),
        (("health", "worker", "q" * PASTED), "sspm: no queue 'qqqq"),
    ):
        done = sspm(slapd, backing, *arguments)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-300:]
        assert says in done.stderr and short_lines(done), done.stderr[:300]
