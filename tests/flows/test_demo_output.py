"""A new user trying the demo can look in the directory with what the demo prints.

The demo prints, beside the accounts, where its directory is (LDAPS and plain
LDAP ports, CA file, base DN, the form of a user's DN, an account to bind
with) and two commands. These stories copy the commands exactly as printed
and run them against a real slapd and a real Samba AD DC, as the user would.
"""

from __future__ import annotations

import re
import shlex
import subprocess

from lab import Slapd
from lab.demo import directory_facts
from lab.samba import SambaDC

_COMMAND = re.compile(r"^\s+((?:LDAPTLS_CACERT=\S+ )?ldapsearch .*)$", re.MULTILINE)


def printed_commands(facts: str) -> list[str]:
    commands = _COMMAND.findall(facts)
    assert len(commands) == 2, facts
    return commands


def run_as_printed(command: str) -> str:
    """Run a printed line in a shell, as a user pasting it would; its output."""
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, f"{command}\n{done.stderr}"
    return done.stdout


def test_the_demo_says_where_openldap_is_and_how_to_look_in_it(slapd: Slapd) -> None:
    facts = directory_facts(slapd)

    assert slapd.ldaps_url in facts
    assert slapd.ldap_url in facts
    assert str(slapd.ca_file) in facts and slapd.ca_file.is_file()
    assert "dc=partners,dc=example" in facts
    assert "uid=<user name>,ou=people,dc=partners,dc=example" in facts

    as_user, search = printed_commands(facts)
    assert slapd.ldap_url in as_user, "the user's own bind goes over the plain LDAP port"
    assert "dn: uid=jsmith,ou=people,dc=partners,dc=example\ncn: John Smith" in run_as_printed(as_user)
    assert re.search(r"^pwdChangedTime: \d{14}Z$", run_as_printed(search), re.MULTILINE)


def test_the_demo_says_where_active_directory_is_and_how_to_look_in_it(samba_dc: SambaDC) -> None:
    facts = directory_facts(samba_dc)

    assert samba_dc.ldaps_url in facts
    assert f"ldap://{samba_dc.address}:389" in facts
    assert str(samba_dc.ca_file) in facts and samba_dc.ca_file.is_file()
    assert "DC=partners,DC=example" in facts
    assert "CN=<given name> <surname>,OU=People,DC=partners,DC=example" in facts

    as_user, search = printed_commands(facts)
    assert f"ldap://{samba_dc.address}:389" in as_user
    assert "cn: John Smith" in run_as_printed(as_user)
    assert re.search(r"^pwdLastSet: \d+$", run_as_printed(search), re.MULTILINE)
    # What the user would copy is one line a shell reads as one command.
    assert shlex.split(search)[0].startswith("LDAPTLS_CACERT=")
