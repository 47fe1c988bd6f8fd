"""A real OpenLDAP slapd with ppolicy, because ppolicy's behaviour (controls,
lockout, restricted connections after a reset) is what the application is
about, and no fake reproduces it faithfully.
"""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from lab.pki import Pki, make_pki
from lab.seed import (
    BASE_DN,
    DEFAULT_POLICY_DN,
    DEMO_ACCOUNTS,
    MAIL_DOMAIN,
    ORGANIZATION_ATTRIBUTES,
    PEOPLE_DN,
    PEOPLE_OUS,
    PROVISIONING_DN,
    SERVICE_DN,
    SeedAccount,
    seed_ldif,
    ssha,
)

__all__ = [
    "PROVISIONING_DN",
    "ROOT_DN",
    "SERVICE_DN",
    "USER_FILTER",
    "Slapd",
    "free_port",
    "start_mirror_pair",
    "start_slapd",
]

ROOT_DN = "cn=admin," + BASE_DN
SERVICE_PASSWORD = "Lab-Service-Secret-7"
PROVISIONING_PASSWORD = "Lab-Provisioning-Secret-3"
#: A user name, an address, or the local part of an address at the mail domain: SSPM keys
#: ``name@partners.example`` on ``name`` (sspm.policy.logins), so the directory must find by
#: both whatever it finds by either, or comparing the two tells that an address has an account.
USER_FILTER = f"(&(objectClass=inetOrgPerson)(|(uid={{login}})(mail={{login}})(mail={{login}}@{MAIL_DOMAIN})))"
ROOT_PASSWORD = "Lab-Root-Secret-9"
START_TIMEOUT = 10.0
_PWD_STATE_ATTRS = (
    "pwdReset,pwdAccountLockedTime,pwdFailureTime,pwdChangedTime,"
    "pwdHistory,pwdGraceUseTime,pwdPolicySubentry,pwdStartTime,pwdEndTime,"
    "pwdLastSuccess,pwdAccountTmpLockoutEnd"
)

# First match wins, both for "to" and for "by"; a "to" without a matching "by"
# denies. The pwd* rule precedes the people rule, or the service account's
# "write" there would be all it gets on them; ppolicy's own updates of these
# attributes are internal and not subject to ACLs. "manage" on userPassword is
# what makes the service account a password administrator (see the notes).
#
# The provisioning account gets, under the people only: "write" (not
# "manage") on userPassword, so a password it sets is held to the policy like
# a user's; pwdReset (a new account's password is temporary) and
# pwdAccountLockedTime (disable, enable); adding and removing entries
# (children) that are people (entry, and the attributes a person is made of),
# never OUs; and reading the rest of the people's tree. Nothing elsewhere.
_PERSON_ATTRS = "entry,objectClass,uid,cn,sn,givenName,displayName,mail,telephoneNumber,title,departmentNumber,mobile"
_ACL = f"""\
access to dn.base="" by * read
access to dn.base="cn=Subschema" by * read
access to dn.subtree="{PEOPLE_DN}" attrs=userPassword
    by self write
    by dn.exact="{SERVICE_DN}" manage
    by dn.exact="{PROVISIONING_DN}" write
    by anonymous auth
    by * none
access to attrs=userPassword
    by self write
    by dn.exact="{SERVICE_DN}" manage
    by anonymous auth
    by * none
access to dn.subtree="{PEOPLE_DN}" attrs=pwdReset,pwdAccountLockedTime
    by dn.exact="{SERVICE_DN}" manage
    by dn.exact="{PROVISIONING_DN}" write
    by * none
access to attrs={_PWD_STATE_ATTRS}
    by dn.exact="{SERVICE_DN}" manage
    by * none
access to dn.subtree="{PEOPLE_DN}" attrs=children
    by dn.exact="{SERVICE_DN}" write
    by dn.exact="{PROVISIONING_DN}" write
    by * none
access to dn.subtree="{PEOPLE_DN}" filter=(objectClass=inetOrgPerson) attrs={_PERSON_ATTRS}
    by dn.exact="{SERVICE_DN}" write
    by dn.exact="{PROVISIONING_DN}" write
    by self read
    by * none
access to dn.subtree="{PEOPLE_DN}"
    by dn.exact="{SERVICE_DN}" write
    by dn.exact="{PROVISIONING_DN}" read
    by self read
    by * none
access to *
    by dn.exact="{SERVICE_DN}" read
    by self read
    by * none
"""


@dataclass
class Slapd:
    workdir: Path
    ldaps_url: str
    ldap_url: str
    ca_file: Path
    root_password: str
    service_password: str
    process: subprocess.Popen[bytes]
    log_file: Path
    base_dn: str = BASE_DN
    service_dn: str = SERVICE_DN
    root_dn: str = ROOT_DN
    policy_dn: str = DEFAULT_POLICY_DN
    provisioning_dn: str = PROVISIONING_DN
    provisioning_password: str = PROVISIONING_PASSWORD
    people_dn: str = PEOPLE_DN

    def __post_init__(self) -> None:
        atexit.register(self.stop)  # an aborted test run must not leave a daemon behind

    def directory_environ(self) -> dict[str, str]:
        """SSPM's directory settings for this slapd (see lab.env)."""
        return {
            "DIRECTORY_KIND": "openldap",
            "LDAP_URL": self.ldaps_url,
            "LDAP_CA_FILE": str(self.ca_file),
            "LDAP_BIND_DN": self.service_dn,
            "LDAP_BIND_PASSWORD": self.service_password,
            "LDAP_BASE_DN": PEOPLE_DN,
            "LDAP_USER_FILTER": USER_FILTER,
            "LDAP_POLICY_DN": self.policy_dn,
            "LDAP_PROVISION_BASE_DN": self.people_dn,
            "LDAP_PROVISIONING_BIND_DN": self.provisioning_dn,
            "LDAP_PROVISIONING_BIND_PASSWORD": self.provisioning_password,
            "SSPM_ORGANIZATION_FROM": f"attribute:{ORGANIZATION_ATTRIBUTES['openldap']}",
            # New people's accounts (sspm.people) go to the lab's Staff OU, whatever their organization.
            "SSPM_PEOPLE_EMPLOYEES_LOCATION": PEOPLE_OUS[0],
            "SSPM_PEOPLE_CLINICIANS_LOCATION": PEOPLE_OUS[0],
        }

    def restart(self) -> None:
        """Start this slapd again after :meth:`stop`: same configuration, data and ports."""
        if self.process.poll() is None:
            return
        self.process = _launch(self.workdir / "slapd.conf", self.ldap_url, self.ldaps_url, self.log_file)
        atexit.register(self.stop)
        _wait_listening(self.process, (_port(self.ldap_url), _port(self.ldaps_url)), self.log_file)

    def binds(self) -> int:
        """Binds this slapd has completed since it started (cn=Monitor, read as the rootdn).

        Tells which of several servers a client talks to. Read with ldapsearch
        over the plain loopback port (the lab leaves ldap3 to connectors/);
        the read's own bind is counted once it is over, so never here.
        """
        found = self.search("cn=Bind,cn=Operations,cn=Monitor", "monitorOpCompleted", scope="base")
        return int(found["monitorOpCompleted"][0])

    def search(
        self, base: str, *attributes: str, scope: str = "sub", query: str = "(objectClass=*)"
    ) -> dict[str, list[str]]:
        """Every value of ``attributes`` under ``base``, as the rootdn sees them (all entries together)."""
        done = subprocess.run(
            [
                "ldapsearch",
                "-x",
                "-LLL",
                "-o",
                "ldif-wrap=no",
                "-H",
                self.ldap_url,
                "-D",
                self.root_dn,
                "-y",
                str(self._root_password_file()),
                "-s",
                scope,
                "-b",
                base,
                query,
                *(attributes or ("1.1",)),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
        if done.returncode not in (0, 32):  # 32: no such object
            raise RuntimeError(f"ldapsearch failed ({done.returncode}): {done.stderr.strip()}")
        values: dict[str, list[str]] = {}
        for line in done.stdout.splitlines():
            name, sep, value = line.partition(": ")
            if sep and name != "dn":
                values.setdefault(name, []).append(value)
        return values

    def _root_password_file(self) -> Path:
        path = self.workdir / "root.pw"
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(self.root_password)  # -y reads it as is: no newline
        return path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        atexit.unregister(self.stop)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def free_port() -> int:
    return _free_ports(1)[0]


def _free_ports(n: int) -> list[int]:
    # Held open together, so one call never hands out the same port twice.
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _config(workdir: Path, pki: Pki, root_password: str, *, server_id: int = 0, peer: str = "") -> str:
    return f"""\
{f"serverID {server_id}" if server_id else ""}
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
moduleload syncprov
authz-policy to
TLSCACertificateFile {pki.ca_file}
TLSCertificateFile {pki.cert_file}
TLSCertificateKeyFile {pki.key_file}
{_ACL}
database mdb
suffix "{BASE_DN}"
rootdn "{ROOT_DN}"
rootpw {ssha(root_password)}
directory {workdir / "data"}
maxsize 268435456
index objectClass,uid,mail,entryCSN,entryUUID eq
limits dn.exact="{SERVICE_DN}" size=unlimited time=unlimited
overlay ppolicy
ppolicy_default "{DEFAULT_POLICY_DN}"
ppolicy_use_lockout
# Keeps the database's contextCSN: where a reader of changes stands.
overlay syncprov
{_syncrepl(pki, peer, root_password) if peer else ""}
# Operation counters (cn=Monitor), read as the rootdn: which server took a bind.
database monitor
rootdn "{ROOT_DN}"
"""


def _syncrepl(pki: Pki, peer: str, root_password: str) -> str:
    """Mirror mode: this provider also consumes everything ``peer`` holds (operational attributes included)."""
    return f"""\
syncrepl rid=001 provider={peer} type=refreshAndPersist retry="1 +" searchbase="{BASE_DN}"
    attrs="*,+" bindmethod=simple binddn="{ROOT_DN}" credentials="{root_password}"
    tls_cacert={pki.ca_file} tls_reqcert=demand timeout=5 network-timeout=5
mirrormode on
"""


def start_slapd(
    workdir: Path,
    accounts: Iterable[SeedAccount] = DEMO_ACCOUNTS,
    *,
    ldaps_port: int | None = None,
    ldap_port: int | None = None,
    service_password: str = SERVICE_PASSWORD,
    provisioning_password: str = PROVISIONING_PASSWORD,
    root_password: str = ROOT_PASSWORD,
    reuse: bool = False,
    pki: Pki | None = None,
    log_file: Path | None = None,
    server_id: int = 0,
    peer: str = "",
    seeded: bool = True,
) -> Slapd:
    """Start slapd in the foreground on loopback; the returned object owns the process.

    With reuse, an existing database is kept as it is (the demo keeps changed
    passwords across restarts); accounts and service_password then only matter
    the first time. With ``peer`` (an ldaps:// URL), this slapd is one of a
    mirror pair (see :func:`start_mirror_pair`), ``server_id`` its number
    in the pair; not ``seeded``, it starts empty and takes everything from
    the peer.
    """
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    pki = pki or make_pki(workdir / "pki")
    conf, data = workdir / "slapd.conf", workdir / "data"
    log_file = log_file or workdir / "slapd.log"
    conf.write_text(_config(workdir, pki, root_password, server_id=server_id, peer=peer))
    conf.chmod(0o600)  # holds the root password hash (and, in a pair, the root password)
    if not (reuse and (data / "data.mdb").exists()):
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(mode=0o700)
    if seeded and not (reuse and (data / "data.mdb").exists()):
        ldif = workdir / "seed.ldif"
        ldif.write_text(seed_ldif(accounts, service_password, provisioning_password=provisioning_password))
        done = subprocess.run(
            ["slapadd", "-q", *(["-S", str(server_id)] if server_id else []), "-f", str(conf), "-l", str(ldif)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"slapadd failed ({done.returncode}):\n{done.stderr}")

    if ldaps_port is None or ldap_port is None:
        ports = _free_ports(2)
        ldap_port, ldaps_port = ldap_port or ports[0], ldaps_port or ports[1]
    ldap_url = f"ldap://127.0.0.1:{ldap_port}"
    ldaps_url = f"ldaps://127.0.0.1:{ldaps_port}"
    process = _launch(conf, ldap_url, ldaps_url, log_file)
    slapd = Slapd(
        workdir,
        ldaps_url,
        ldap_url,
        pki.ca_file,
        root_password,
        service_password,
        process,
        log_file,
        provisioning_password=provisioning_password,
    )
    try:
        _wait_listening(process, (ldap_port, ldaps_port), log_file)
    except BaseException:
        slapd.stop()
        raise
    return slapd


def start_mirror_pair(
    workdir: Path,
    pki: Pki,
    accounts: Iterable[SeedAccount] = DEMO_ACCOUNTS,
    *,
    service_password: str = SERVICE_PASSWORD,
) -> tuple[Slapd, Slapd]:
    """Two OpenLDAP providers replicating each other (syncrepl, mirror mode), both listening on 127.0.0.1.

    The first is seeded with ``accounts``; the second starts empty and gets
    everything from the first by replication, and from then on each takes
    writes and sends them to the other (reconnecting every second while the
    other is down). Returns once the second holds every seeded entry. Both
    use ``pki`` (its certificate is valid for 127.0.0.1) and the same
    accounts and passwords; give SSPM both with
    ``LDAP_URL="<first.ldaps_url> <second.ldaps_url>"``. Each can be stopped
    and :meth:`Slapd.restart`-ed on its ports and data; :meth:`Slapd.binds`
    says which one took a bind.

    What replicates (tested in tests/contract/test_replicas.py): entries and
    passwords, and ppolicy's state as the other server wrote it
    (pwdFailureTime, pwdAccountLockedTime, pwdChangedTime, pwdReset). Each
    server counts bind failures against its own copy, so with binds spread
    over both a lockout may take up to pwdMaxFailure failures on each.
    """
    workdir = workdir.resolve()
    ldap1, ldaps1, ldap2, ldaps2 = _free_ports(4)
    first_url, second_url = f"ldaps://127.0.0.1:{ldaps1}", f"ldaps://127.0.0.1:{ldaps2}"
    first = start_slapd(
        workdir / "first",
        accounts,
        ldaps_port=ldaps1,
        ldap_port=ldap1,
        service_password=service_password,
        pki=pki,
        server_id=1,
        peer=second_url,
    )
    try:
        second = start_slapd(
            workdir / "second",
            ldaps_port=ldaps2,
            ldap_port=ldap2,
            service_password=service_password,
            pki=pki,
            server_id=2,
            peer=first_url,
            seeded=False,
        )
    except BaseException:
        first.stop()
        raise
    try:
        _wait_replicated(first, second)
    except BaseException:
        first.stop()
        second.stop()
        raise
    return first, second


def _wait_replicated(first: Slapd, second: Slapd) -> None:
    """Until both hold the same entries (the second's initial refresh is over)."""
    deadline = time.monotonic() + START_TIMEOUT * 3
    while True:
        counts = (_entries(first), _entries(second))
        if counts[0] and counts[0] == counts[1]:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the mirror pair did not converge: {counts} entries:\n{_tail(second.log_file)}")
        time.sleep(0.05)


def _entries(slapd: Slapd) -> int:
    try:
        return len(slapd.search(slapd.base_dn, "entryUUID").get("entryUUID", []))
    except RuntimeError:
        return 0


def _launch(conf: Path, ldap_url: str, ldaps_url: str, log_file: Path) -> subprocess.Popen[bytes]:
    with log_file.open("ab") as log:
        # -d keeps slapd in the foreground, so we own its pid; "none" still logs
        # errors (a port in use...), where "0" is silent.
        return subprocess.Popen(
            ["slapd", "-f", str(conf), "-h", f"{ldap_url}/ {ldaps_url}/", "-d", "none"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _wait_listening(process: subprocess.Popen[bytes], ports: tuple[int, int], log_file: Path) -> None:
    # slapd calls listen() only after its databases are open, so an accepted
    # connection means it is ready to answer.
    deadline = time.monotonic() + START_TIMEOUT
    pending = list(ports)
    while pending:
        if process.poll() is not None:
            raise RuntimeError(f"slapd exited with {process.returncode}:\n{_tail(log_file)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"slapd not listening on {pending} after {START_TIMEOUT} s:\n{_tail(log_file)}")
        try:
            socket.create_connection(("127.0.0.1", pending[0]), timeout=0.5).close()
            pending.pop(0)
        except OSError:
            time.sleep(0.005)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
