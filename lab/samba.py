"""A real Samba AD DC for the PARTNERS domain, because what Active Directory
decides (bind codes, lockout, password constraints, delegated rights) is what
the AD connector is about, and no fake reproduces it faithfully.

Three layers, each cheaper than the one before:

1. :func:`provision_base` runs ``samba-tool domain provision`` (~8 s) and adds
   the OUs, the delegated service account, its rights and the people, all
   offline with Samba's own ldb tools. It is cached per machine under the
   directory the caller gives, keyed by everything that goes into it.
2. :func:`make_snapshot` copies the base, gives it a certificate for the
   loopback addresses it may listen on, and puts the accounts in their
   time-relative states (locked now, expiring in 5 days...). Once per test
   session; still offline.
3. :func:`start_samba` copies a snapshot and starts it (0.2-0.4 s): each
   test gets a directory of its own, as each gets its own slapd.
   :class:`SambaLine` starts the next copy while a test uses the current one.
   :func:`start_kept_samba` (the demo's) makes its copy once and starts it
   as it was left every time after.
4. :func:`start_dc_pair` starts a copy of a snapshot as a replicating DC
   and joins a second DC to it (``samba-tool domain join``, 2.5-7 s here):
   two DCs of one domain, each with its own address, replicating changes
   both ways within seconds, for the tests of failover between DCs.

Samba listens on spare loopback addresses (127.0.0.2 first, never
127.0.0.1) with ``bind interfaces only``, and runs nothing but its LDAP
server (``server services = ldap``, ``-M single``: one process), so it opens
no other port and talks to nothing else. Facts behind the choices:
../shared/notes/samba-ad-dc.md (in the workspace).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from lab import seed
from lab.seed import (
    DEMO_ACCOUNTS,
    EXPIRES_IN,
    MAIL_DOMAIN,
    MAX_AGE,
    MAX_FAILURE,
    ORGANIZATION_ATTRIBUTES,
    PEOPLE_OUS,
    SeedAccount,
)

__all__ = [
    "ADMIN_DN",
    "DEFAULT_ADDRESS",
    "DOMAIN_DN",
    "KEPT_ADDRESSES",
    "PEOPLE_DN",
    "PROVISIONING_DN",
    "SERVICE_DN",
    "USER_FILTER",
    "SambaDC",
    "SambaLine",
    "SambaPair",
    "SambaSnapshot",
    "default_cache",
    "make_snapshot",
    "person_dn",
    "provision_base",
    "spare_loopback_address",
    "start_dc_pair",
    "start_kept_samba",
    "start_samba",
]

REALM = "PARTNERS.EXAMPLE"
DOMAIN = "PARTNERS"
DOMAIN_DN = "DC=partners,DC=example"
PEOPLE_DN = "OU=People," + DOMAIN_DN
SERVICES_DN = "OU=Services," + DOMAIN_DN
SERVICE_DN = "CN=sspm," + SERVICES_DN
#: The account SSPM creates, changes, moves, deletes, enables and disables accounts as.
PROVISIONING_DN = "CN=sspm-provisioning," + SERVICES_DN
ADMIN_DN = "CN=Administrator,CN=Users," + DOMAIN_DN
ADMIN_PASSWORD = "Lab-Admin-Secret-5"
SERVICE_PASSWORD = "Lab-Service-Secret-7"
PROVISIONING_PASSWORD = "Lab-Provisioning-Secret-3"
DEFAULT_ADDRESS = "127.0.0.2"
#: What SSPM searches people with: a user types a user name, a UPN or an email.
#: As lab.slapd's: the local part of an address at the mail domain finds what the address finds.
USER_FILTER = (
    "(&(objectCategory=person)(objectClass=user)"
    f"(|(sAMAccountName={{login}})(userPrincipalName={{login}})(mail={{login}})(mail={{login}}@{seed.MAIL_DOMAIN})))"
)
LOCKOUT_MINUTES = 30
HISTORY = 5
MIN_LENGTH = 8
START_TIMEOUT = 15.0

# The rights the service account gets on OU=People, inherited by user objects
# only: Reset Password, and write pwdLastSet and lockoutTime. Nothing else:
# not userAccountControl, so it can never enable a disabled account.
_USER_CLASS = "bf967aba-0de6-11d0-a285-00aa003049e2"
_DELEGATED_RIGHTS = (
    ("CR", "00299570-246d-11d0-a768-00aa006e0529"),  # Reset Password
    ("WP", "bf967a0a-0de6-11d0-a285-00aa003049e2"),  # pwdLastSet
    ("WP", "28630ebf-41d5-11d1-a9c1-0000f80367c1"),  # lockoutTime
)
# The provisioning account's, on OU=People and every OU below it: create and
# delete user objects (nothing else: no OUs, no groups), and on user objects
# Reset Password and write the attributes a person is made of, her name (a
# move renames when the name is taken) and userAccountControl (enable,
# disable). By lDAPDisplayName; their GUIDs are read from the schema.
_RESET_PASSWORD = "00299570-246d-11d0-a768-00aa006e0529"
_PROVISIONED_ATTRIBUTES = (
    "userAccountControl",
    "pwdLastSet",
    "sAMAccountName",
    "userPrincipalName",
    "givenName",
    "sn",
    "displayName",
    "mail",
    "telephoneNumber",
    "title",
    "department",
    "mobile",
    "company",
    "name",
    "cn",
)
# Lets ldbmodify write pwdLastSet to any value (DSDB_CONTROL_PASSWORD_BYPASS_LAST_SET):
# the only way to an expired password, since LDAP accepts only 0 and -1.
_BYPASS_LAST_SET = "local_oid:1.3.6.1.4.1.7165.4.3.20:0"
_UF_NORMAL_ACCOUNT = 0x200
_UF_ACCOUNTDISABLE = 0x2
_UF_DONT_EXPIRE_PASSWD = 0x10000


def default_cache() -> Path:
    """Where the provisioned base is kept between runs on this machine."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "sspm-samba"


def spare_loopback_address(first: int = 2) -> str:
    """A 127.0.0.x address on which nothing listens on the LDAP ports.

    Linux answers on all of 127/8 without configuration; 127.0.0.1 is never
    offered, since other servers own its standard ports. The address is
    claimed for as long as this process lives (a lock file), so two test
    runs on one machine never pick the same one, even while one of them is
    between two DCs and its ports are briefly free.
    """
    for host in range(max(first, 2), 255):
        address = f"127.0.0.{host}"
        if address in _claims or not all(_port_free(address, port) for port in (389, 636)):
            continue
        claim = (Path(tempfile.gettempdir()) / f"sspm-samba-{address}.lock").open("a")
        try:
            fcntl.flock(claim, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            claim.close()
            continue
        _claims[address] = claim
        return address
    raise RuntimeError("no spare 127.0.0.x address with ports 389 and 636 free")


#: Addresses this process claimed, with the open lock file that holds each.
_claims: dict[str, IO[str]] = {}


def _port_free(address: str, port: int) -> bool:
    with socket.socket() as probe:
        # As Samba binds: connections in TIME_WAIT from an earlier run do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


# -- 1. the provisioned domain, cached per machine ---------------------------------


def provision_base(cache: Path, accounts: Iterable[SeedAccount] = DEMO_ACCOUNTS) -> Path:
    """The provisioned, stopped domain with its people, reusing a cached one.

    Safe to call from several processes at once: one provisions, the others
    wait and reuse.
    """
    accounts = tuple(accounts)
    cache.mkdir(parents=True, exist_ok=True)
    base = cache / f"base-{_base_key(accounts)}"
    with _locked(cache / ".lock"):
        _prune(cache)
        if (base / "READY").exists():
            (base / "READY").touch()  # in use: not pruned
            return base
        shutil.rmtree(base, ignore_errors=True)
        building = Path(tempfile.mkdtemp(prefix=".building-", dir=cache))
        try:
            _provision(building, accounts)
            (building / "READY").write_text(datetime.now(UTC).isoformat())
            building.rename(base)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
    return base


def _prune(cache: Path, unused_for: timedelta = timedelta(days=7)) -> None:
    """Drop failed builds (called under the lock: none is running), and bases
    no run has used for a while (each ~35 MB)."""
    cutoff = time.time() - unused_for.total_seconds()
    for path in cache.glob(".building-*"):
        shutil.rmtree(path, ignore_errors=True)
    for path in cache.glob("base-*"):
        ready = path / "READY"
        if not ready.exists() or ready.stat().st_mtime < cutoff:
            shutil.rmtree(path, ignore_errors=True)


def _base_key(accounts: tuple[SeedAccount, ...]) -> str:
    """Samba's version, the code that makes the base and the accounts: a change to any remakes it.

    The code is this module's (the OUs, the service and provisioning
    accounts and their rights) and lab/seed.py's (the policy, the OUs below
    the people's, the mail domain), so changing a right or a limit can never
    start a test on a base made before.
    """
    material = json.dumps(
        [
            _run(["samba", "--version"]).strip(),
            hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
            hashlib.sha256(Path(seed.__file__).read_bytes()).hexdigest(),
            [dataclasses.asdict(a) for a in accounts],
        ],
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _provision(target: Path, accounts: tuple[SeedAccount, ...]) -> None:
    private = [f"--option={name} = {target / sub}" for name, sub in _PRIVATE_DIRS]
    _run(
        [
            "samba-tool",
            "domain",
            "provision",
            f"--targetdir={target}",
            f"--realm={REALM}",
            f"--domain={DOMAIN}",
            "--server-role=dc",
            # The internal DNS would copy resolv.conf's (non-loopback) forwarder.
            "--dns-backend=NONE",
            "--use-rfc2307",
            "--host-name=dc1",
            f"--host-ip={DEFAULT_ADDRESS}",
            f"--adminpass={ADMIN_PASSWORD}",
            f"--option=interfaces = {DEFAULT_ADDRESS}/8",
            "--option=bind interfaces only = yes",
            *private,
        ]
    )
    sam = str(target / "private" / "sam.ldb")
    _run(
        [
            "samba-tool",
            "domain",
            "passwordsettings",
            "set",
            "-H",
            sam,
            "--complexity=on",
            f"--min-pwd-length={MIN_LENGTH}",
            f"--history-length={HISTORY}",
            "--min-pwd-age=0",
            f"--max-pwd-age={MAX_AGE.days}",
            f"--account-lockout-threshold={MAX_FAILURE}",
            f"--account-lockout-duration={LOCKOUT_MINUTES}",
            f"--reset-account-lockout-after={LOCKOUT_MINUTES}",
        ]
    )
    _ldb("ldbadd", sam, _ldif(_containers()))
    # Rights are set before the people and the OUs below exist: Samba gives
    # inherited ACEs to new children, but an offline change does not reach
    # existing ones.
    service, provisioning = _sid(sam, SERVICE_DN), _sid(sam, PROVISIONING_DN)
    aces = [f"(OA;CIIO;{right};{guid};{_USER_CLASS};{service})" for right, guid in _DELEGATED_RIGHTS]
    aces.append(f"(OA;CI;CCDC;{_USER_CLASS};;{provisioning})")
    aces.append(f"(OA;CIIO;CR;{_RESET_PASSWORD};{_USER_CLASS};{provisioning})")
    guids = _schema_guids(sam, _PROVISIONED_ATTRIBUTES)
    aces += (f"(OA;CIIO;WP;{guids[name]};{_USER_CLASS};{provisioning})" for name in _PROVISIONED_ATTRIBUTES)
    _run(["samba-tool", "dsacl", "set", "-H", sam, f"--objectdn={PEOPLE_DN}", f"--sddl={''.join(aces)}"])
    _ldb("ldbadd", sam, _ldif(_people_ous()))
    _ldb("ldbadd", sam, _ldif(_person(a) for a in accounts))
    _configure(target / "etc" / "smb.conf")


def _sid(sam: str, dn: str) -> str:
    found = _run(["ldbsearch", "-H", sam, "-b", dn, "-s", "base", "objectSid"])
    match = re.search(r"^objectSid: (S-1-5-[0-9-]+)$", found, re.MULTILINE)
    if not match:
        raise RuntimeError(f"{dn} has no objectSid:\n{found}")
    return match.group(1)


def _schema_guids(sam: str, names: Sequence[str]) -> dict[str, str]:
    """The schemaIDGUID of each attribute, by lDAPDisplayName, as this Samba's schema has it."""
    wanted = "".join(f"(lDAPDisplayName={name})" for name in names)
    schema = f"CN=Schema,CN=Configuration,{DOMAIN_DN}"
    found = _run(["ldbsearch", "-H", sam, "-b", schema, f"(|{wanted})", "lDAPDisplayName", "schemaIDGUID"])
    guids = {}
    for record in found.split("\n\n"):
        name = re.search(r"^lDAPDisplayName: (\S+)$", record, re.MULTILINE)
        guid = re.search(r"^schemaIDGUID: ([0-9a-f-]{36})$", record, re.MULTILINE)
        if name and guid:
            guids[name.group(1)] = guid.group(1)
    missing = set(names) - set(guids)
    if missing:
        raise RuntimeError(f"no schemaIDGUID for {sorted(missing)} in the schema")
    return guids


#: Every place Samba writes runtime files, kept inside its own directory.
_PRIVATE_DIRS = (
    ("pid directory", "run"),
    ("ncalrpc dir", "ncalrpc"),
    ("winbindd socket directory", "winbindd"),
    ("ntp signd socket directory", "ntp"),
    ("log file", "log/samba.log"),
)


def _configure(conf: Path) -> None:
    # Provisioning drops some --option values (old password allowed period
    # among them), so the settings that matter are written here.
    extra = {
        # Else the previous password still binds for an hour after a change.
        "old password allowed period": "0",
        # Only the LDAP server: one process, no SMB/Kerberos/DNS ports, no
        # dnsupdate or ntp helpers reaching out.
        "server services": "ldap",
        "tls enabled": "yes",
        "tls keyfile": "tls/key.pem",
        "tls certfile": "tls/cert.pem",
        "tls cafile": "tls/ca.pem",
        # Without it Samba generates fresh DH parameters at every start: 0.1 to
        # 2.5 s of CPU, at random. RFC 7919's ffdhe2048 group costs nothing.
        "tls dh params file": "tls/dh.pem",
        "panic action": "",
    }
    text = conf.read_text()
    for name in extra:
        text = re.sub(rf"^\s*{re.escape(name)}\s*=.*\n", "", text, flags=re.MULTILINE)
    lines = "".join(f"\t{name} = {value}\n" for name, value in extra.items())
    conf.write_text(text.replace("[global]\n", "[global]\n" + lines, 1))


def _containers() -> Iterator[list[tuple[str, str]]]:
    for ou in ("People", "Services"):
        yield [("dn", f"OU={ou},{DOMAIN_DN}"), ("objectClass", "organizationalUnit"), ("ou", ou)]
    yield [
        ("dn", SERVICE_DN),
        ("objectClass", "user"),
        ("sAMAccountName", "sspm"),
        ("userPrincipalName", f"sspm@{MAIL_DOMAIN}"),
        ("displayName", "SSPM service account"),
        ("userAccountControl", str(_UF_NORMAL_ACCOUNT | _UF_DONT_EXPIRE_PASSWD)),
        ("unicodePwd", _unicode_pwd(SERVICE_PASSWORD)),
    ]
    yield [
        ("dn", PROVISIONING_DN),
        ("objectClass", "user"),
        ("sAMAccountName", "sspm-provisioning"),
        ("userPrincipalName", f"sspm-provisioning@{MAIL_DOMAIN}"),
        ("displayName", "SSPM provisioning account"),
        ("userAccountControl", str(_UF_NORMAL_ACCOUNT | _UF_DONT_EXPIRE_PASSWD)),
        ("unicodePwd", _unicode_pwd(PROVISIONING_PASSWORD)),
    ]


def _people_ous() -> Iterator[list[tuple[str, str]]]:
    for ou in PEOPLE_OUS:
        yield [("dn", f"OU={ou},{PEOPLE_DN}"), ("objectClass", "organizationalUnit"), ("ou", ou)]


def person_dn(account: SeedAccount) -> str:
    return f"CN={account.display_name},{PEOPLE_DN}"


def _person(a: SeedAccount) -> list[tuple[str, str]]:
    control = _UF_NORMAL_ACCOUNT | (_UF_ACCOUNTDISABLE if a.state == "disabled" else 0)
    attrs = [
        ("dn", person_dn(a)),
        ("objectClass", "user"),
        ("sAMAccountName", a.uid),
        ("userPrincipalName", f"{a.uid}@{MAIL_DOMAIN}"),
        ("givenName", a.given_name),
        ("sn", a.surname),
        ("displayName", a.display_name),
        ("userAccountControl", str(control)),
        ("unicodePwd", _unicode_pwd(a.password)),
    ]
    if a.mail is not None:
        attrs.append(("mail", a.mail))
    if a.organization is not None:
        attrs.append((ORGANIZATION_ATTRIBUTES["ad"], a.organization))
    return attrs


# -- 2. a snapshot for some addresses, accounts in their states -------------------------


@dataclass(frozen=True)
class SambaSnapshot:
    """A stopped domain ready to be copied and started (see :func:`start_samba`).

    Its certificate names every one of ``addresses``; a copy can listen on any.
    """

    directory: Path
    addresses: tuple[str, ...]
    made_at: datetime

    @property
    def address(self) -> str:
        return self.addresses[0]


def make_snapshot(
    workdir: Path,
    *,
    cache: Path | None = None,
    addresses: Sequence[str] = (),
    count: int = 1,
    accounts: Iterable[SeedAccount] = DEMO_ACCOUNTS,
    now: datetime | None = None,
) -> SambaSnapshot:
    """A domain whose accounts are in their states as of ``now``.

    It can listen on ``addresses``, or on ``count`` spare loopback addresses.
    ``cache`` keeps the provisioned base between runs; without it the base is
    provisioned under ``workdir``.
    """
    accounts = tuple(accounts)
    chosen = tuple(addresses) or tuple(spare_loopback_address() for _ in range(count))
    now = now or datetime.now(UTC)
    base = provision_base(cache or workdir / "cache", accounts)
    target = workdir.resolve() / "snapshot"
    _copy(base, target)
    (target / "READY").unlink()
    _make_tls(target / "private" / "tls", chosen)
    states = [s for s in (_state(a, now) for a in accounts) if s]
    if states:
        _ldb("ldbmodify", str(target / "private" / "sam.ldb"), _ldif(states), _BYPASS_LAST_SET)
    return SambaSnapshot(target, chosen, now)


def _state(a: SeedAccount, now: datetime) -> list[tuple[str, str]]:
    """A modify record putting ``a`` in its state, or nothing for normal/disabled."""
    change = [("dn", person_dn(a)), ("changetype", "modify")]
    if a.state == "temporary":
        return [*change, *_replace("pwdLastSet", "0")]
    if a.state in ("expired", "expiring"):
        age = timedelta(days=365) if a.state == "expired" else MAX_AGE - EXPIRES_IN
        # Any value is taken only with _BYPASS_LAST_SET (else 0 or -1).
        return [*change, *_replace("pwdLastSet", str(filetime(now - age)))]
    if a.state == "locked":
        # What five wrong binds leave behind, written directly.
        stamp = str(filetime(now))
        return [
            *change,
            *_replace("lockoutTime", stamp),
            *_replace("badPwdCount", str(MAX_FAILURE)),
            *_replace("badPasswordTime", stamp),
        ]
    return []


_OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = {names}, DNS:dc1.partners.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def _make_tls(directory: Path, addresses: Sequence[str]) -> None:
    """A CA, a certificate for ``addresses`` and DH parameters, made beforehand.

    Samba would otherwise make a 4096-bit key at first start (seconds), and
    a certificate without the IP in its SAN fails verification.
    """
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        names = ", ".join(f"IP:{address}" for address in addresses)
        Path(tmp, "openssl.cnf").write_text(_OPENSSL_CNF.format(names=names))
        req = "openssl req -config openssl.cnf -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -extensions"
        _run(f"{req} ca -days 3650 -subj /CN=sspm-samba-lab-ca -keyout ca.key -out ca.pem".split(), cwd=tmp)
        _run(
            f"{req} server -days 825 -subj /CN=dc1.partners.example -CA ca.pem -CAkey ca.key"
            " -keyout key.pem -out cert.pem".split(),
            cwd=tmp,
        )
        dh = "openssl genpkey -genparam -algorithm DH -pkeyopt dh_param:ffdhe2048 -out dh.pem"
        _run(dh.split(), cwd=tmp)
        for name in ("key.pem", "cert.pem", "ca.pem", "dh.pem"):
            os.replace(Path(tmp, name), directory / name)
    (directory / "key.pem").chmod(0o600)  # Samba refuses a readable key


# -- 3. a running DC ----------------------------------------------------------------


@dataclass
class SambaDC:
    workdir: Path
    address: str
    process: subprocess.Popen[bytes]
    log_file: Path
    ldaps_url: str
    ca_file: Path
    service_dn: str = SERVICE_DN
    service_password: str = SERVICE_PASSWORD
    provisioning_dn: str = PROVISIONING_DN
    provisioning_password: str = PROVISIONING_PASSWORD
    admin_dn: str = ADMIN_DN
    admin_password: str = ADMIN_PASSWORD
    domain_dn: str = DOMAIN_DN
    people_dn: str = PEOPLE_DN
    #: The snapshot it was copied from.
    source: Path | None = None

    def __post_init__(self) -> None:
        atexit.register(self.stop)  # an aborted test run must not leave a daemon behind

    def directory_environ(self) -> dict[str, str]:
        """SSPM's directory settings for this DC (see lab.env).

        No LDAP_POLICY_DN: the connector reads the domain's policy from the
        DC= part of LDAP_BASE_DN, as an operator's AD configuration would.
        """
        return {
            "DIRECTORY_KIND": "ad",
            "LDAP_URL": self.ldaps_url,
            "LDAP_STARTTLS": "false",
            "LDAP_CA_FILE": str(self.ca_file),
            "LDAP_BIND_DN": self.service_dn,
            "LDAP_BIND_PASSWORD": self.service_password,
            "LDAP_BASE_DN": self.people_dn,
            "LDAP_USER_FILTER": USER_FILTER,
            "LDAP_PROVISION_BASE_DN": self.people_dn,
            "LDAP_PROVISIONING_BIND_DN": self.provisioning_dn,
            "LDAP_PROVISIONING_BIND_PASSWORD": self.provisioning_password,
            "SSPM_ORGANIZATION_FROM": f"attribute:{ORGANIZATION_ATTRIBUTES['ad']}",
            # New people's accounts (sspm.people) go to the lab's Staff OU, whatever their organization.
            "SSPM_PEOPLE_EMPLOYEES_LOCATION": PEOPLE_OUS[0],
            "SSPM_PEOPLE_CLINICIANS_LOCATION": PEOPLE_OUS[0],
        }

    @property
    def sam_ldb(self) -> Path:
        return self.workdir / "private" / "sam.ldb"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a frozen DC cannot act on SIGTERM
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        atexit.unregister(self.stop)

    def discard(self) -> None:
        """Stop, and delete everything but the logs (a copy is ~35 MB)."""
        self.stop()
        for path in self.workdir.iterdir():
            if path.name != "log":
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_samba(
    workdir: Path,
    snapshot: SambaSnapshot,
    *,
    address: str | None = None,
    max_runtime: int = 1800,
) -> SambaDC:
    """Copy ``snapshot`` into ``workdir`` and start it; the returned object owns the process.

    It listens on ``address`` (one of the snapshot's; the first by default).
    ``max_runtime`` seconds later Samba stops by itself, whatever happens to
    the caller.
    """
    address = address or snapshot.address
    if address not in snapshot.addresses:
        raise ValueError(f"the snapshot's certificate names {snapshot.addresses}, not {address}")
    workdir = workdir.resolve()
    _copy(snapshot.directory, workdir)
    return _launch(workdir, address, max_runtime, source=snapshot.directory)


#: The addresses a kept DC's certificate names; each start takes whichever is free.
KEPT_ADDRESSES = tuple(f"127.0.0.{host}" for host in range(2, 18))


def start_kept_samba(
    workdir: Path,
    *,
    cache: Path | None = None,
    max_runtime: int = 1800,
    accounts: Iterable[SeedAccount] = DEMO_ACCOUNTS,
) -> SambaDC:
    """A DC whose domain lives on in ``workdir`` (the demo's): a changed password stays changed.

    The first time, a snapshot is made (the accounts in their states as of
    now) and becomes ``workdir``; every later start runs it as it was left.
    Its certificate names all of :data:`KEPT_ADDRESSES`, so each start can
    take whichever is free then (test runs beside it may hold some).
    """
    workdir = workdir.resolve()
    if not (workdir / "private" / "sam.ldb").exists():
        workdir.parent.mkdir(parents=True, exist_ok=True)
        making = Path(tempfile.mkdtemp(prefix=f".{workdir.name}-", dir=workdir.parent))
        try:
            snapshot = make_snapshot(making, cache=cache, addresses=KEPT_ADDRESSES, accounts=accounts)
            shutil.rmtree(workdir, ignore_errors=True)
            snapshot.directory.rename(workdir)
            _rehome(workdir)
        finally:
            shutil.rmtree(making, ignore_errors=True)
    address = spare_loopback_address()
    if address not in KEPT_ADDRESSES:
        raise RuntimeError(f"{KEPT_ADDRESSES[0]} to {KEPT_ADDRESSES[-1]} are all in use: no address for the DC")
    return _launch(workdir, address, max_runtime)


def _launch(
    workdir: Path,
    address: str,
    max_runtime: int,
    source: Path | None = None,
    environ: dict[str, str] | None = None,
) -> SambaDC:
    """Start the domain in ``workdir`` on ``address``, and wait until it listens."""
    # A pid file left by a crash could name a living, unrelated process.
    (workdir / "run" / "samba.pid").unlink(missing_ok=True)
    conf = workdir / "etc" / "smb.conf"
    conf.write_text(re.sub(r"^(\s*interfaces\s*=).*$", rf"\1 {address}/8", conf.read_text(), flags=re.MULTILINE))
    log_file = workdir / "log" / "samba.out"
    log_file.parent.mkdir(exist_ok=True)
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            ["samba", "--foreground", "-M", "single", f"--maximum-runtime={max_runtime}", "-s", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=environ,
        )
    dc = SambaDC(
        workdir,
        address,
        process,
        log_file,
        ldaps_url=f"ldaps://{address}:636",
        ca_file=workdir / "private" / "tls" / "ca.pem",
        source=source,
    )
    try:
        _wait_listening(dc)
    except BaseException:
        dc.stop()
        raise
    return dc


def _wait_listening(dc: SambaDC) -> None:
    # samba -D returns 0 even when it dies a moment later (no sockets...):
    # only a bound port and a living pid say it started. The port is probed
    # by trying to bind it, not by connecting, so waiting opens no connection
    # anyone could count (and costs less than reading /proc/net/tcp). Samba
    # binds and listens together, once TLS is set up.
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if dc.process.poll() is not None:
            raise RuntimeError(f"samba exited with {dc.process.returncode}:\n{_tail(dc.workdir / 'log')}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"samba not listening on {dc.address}:636 after {START_TIMEOUT} s")
        if not _port_free(dc.address, 636):
            return
        time.sleep(0.005)


class SambaLine:
    """Fresh DCs one after another, each started while the one before is in use.

    A DC starts in 0.2-0.4 s on an idle machine (seconds on a busy one); a
    test suite taking a fresh DC per test gets the next one already
    listening. Two of the snapshot's addresses alternate: the DC in use on
    one, the next one starting on the other.
    """

    def __init__(self, snapshots: Callable[[], SambaSnapshot], root: Path, *, max_runtime: int = 600) -> None:
        #: Called at each take: a new snapshot (say, fresher states) is used from then on.
        self._snapshots = snapshots
        self._root = root
        self._max_runtime = max_runtime
        self._made = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="samba-line")
        self._current: SambaDC | None = None
        self._next: Future[SambaDC] | None = None

    def take(self) -> SambaDC:
        """A fresh, listening DC; the previous one is stopped if it still runs."""
        if self._current is not None:
            self._current.stop()  # its address is the next one's
        snapshot = self._snapshots()
        if len(snapshot.addresses) < 2:
            raise ValueError("a SambaLine needs a snapshot made for two addresses")
        dc = self._next.result() if self._next else None
        if dc is None or dc.source != snapshot.directory:
            if dc is not None:
                dc.discard()
            dc = self._start(snapshot, snapshot.addresses[0])
        self._current = dc
        spare = next(a for a in snapshot.addresses if a != dc.address)
        self._next = self._executor.submit(self._start, snapshot, spare)
        return dc

    def _start(self, snapshot: SambaSnapshot, address: str) -> SambaDC:
        self._made += 1
        return start_samba(self._root / f"dc-{self._made}", snapshot, address=address, max_runtime=self._max_runtime)

    def close(self) -> None:
        """Stop the DC in use and the one waiting."""
        if self._next is not None:
            with contextlib.suppress(Exception):
                self._next.result().discard()
        self._executor.shutdown()
        if self._current is not None:
            self._current.stop()


# -- 4. two DCs of one domain, replicating ---------------------------------------------

#: A replicating DC runs what a join and replication need (RPC, the KDC, drepl, the KCC) and
#: still no DNS server, no dnsupdate (it would look for resolv.conf's server), no winbindd.
_REPLICATING_SERVICES = "-dns -dnsupdate -ntp_signd -winbindd -smb"
#: drepl's defaults are minutes (periodic pull every 300 s): seconds here, for tests that wait on it.
_REPLICATION_TUNING = {
    "dreplsrv:periodic_interval": "2",
    "dreplsrv:periodic_startup_interval": "1",
    "dreplsrv:notify_interval": "1",
}
#: The SPN replication asks a ticket for: ``<DRS_SPN>/<NTDS Settings GUID>/<domain>``. Samba's
#: dnsupdate service registers it at start; it is off here, so it is added before the first start.
_DRS_SPN = "E3514235-4B06-11D1-AB04-00C04FC2DCD2"
#: Samba finds the other DC by DNS (``<guid>._msdcs.<domain>``, a Kerberos SRV record). With no DNS
#: server on loopback, cwrap's resolv_wrapper answers from a file (Samba's own test suite does so).
RESOLV_WRAPPER = "libresolv_wrapper.so"


@dataclass
class SambaPair:
    """Two DCs of the lab's domain, each on its own address, replicating each other.

    Both certificates come from one CA (``first.ca_file`` verifies both), each
    naming the DC's own address.
    """

    first: SambaDC
    second: SambaDC
    #: How long ``samba-tool domain join`` took (the whole second DC, from nothing).
    join_seconds: float

    def stop(self) -> None:
        self.second.stop()
        self.first.stop()


def start_dc_pair(workdir: Path, snapshot: SambaSnapshot, *, max_runtime: int = 600) -> SambaPair:
    """The snapshot started as DC1 on its first address, and DC2 joined to it on its second.

    Needs Debian's ``libresolv-wrapper`` (``scripts/setup --tests``).
    """
    if len(snapshot.addresses) < 2:
        raise ValueError("a DC pair needs a snapshot made for two addresses")
    wrapper = _resolv_wrapper()
    first_address, second_address = snapshot.addresses[:2]
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    names, krb5 = workdir / "dns-hosts", workdir / "krb5.conf"
    environ = {**os.environ, "LD_PRELOAD": str(wrapper), "RESOLV_WRAPPER_HOSTS": str(names), "KRB5_CONFIG": str(krb5)}
    dns_domain = REALM.lower()
    hosts = {"dc1": first_address, "dc2": second_address}
    names.write_text(
        "".join(f"A {host}.{dns_domain} {address}\n" for host, address in hosts.items())
        + "".join(f"SRV _kerberos._tcp.{dns_domain} {host}.{dns_domain} 88\n" for host in hosts)
    )
    kdcs = "".join(f"  kdc = {address}\n" for address in hosts.values())
    krb5.write_text(
        f"[libdefaults]\n default_realm = {REALM}\n dns_lookup_realm = false\n dns_lookup_kdc = false\n"
        f"[realms]\n {REALM} = {{\n{kdcs} }}\n {dns_domain} = {{\n{kdcs} }}\n"
        f"[domain_realm]\n .{dns_domain} = {REALM}\n {dns_domain} = {REALM}\n"
    )

    first_dir = workdir / "dc1"
    _copy(snapshot.directory, first_dir)
    first_sam = str(first_dir / "private" / "sam.ldb")
    first_guid = _ntds_guid(first_sam, "DC1")
    _run(["samba-tool", "spn", "add", f"{_DRS_SPN}/{first_guid}/{dns_domain}", "DC1$", "-H", first_sam])
    _replicating(first_dir / "etc" / "smb.conf")
    with names.open("a") as out:
        out.write(f"CNAME {first_guid}._msdcs.{dns_domain} dc1.{dns_domain}\n")
    first = _launch(first_dir, first_address, max_runtime, source=snapshot.directory, environ=environ)
    try:
        second_dir = workdir / "dc2"
        shutil.rmtree(second_dir, ignore_errors=True)
        second_dir.mkdir()
        private = [f"--option={name} = {second_dir / sub}" for name, sub in _PRIVATE_DIRS]
        started = time.monotonic()
        _run(
            [
                "samba-tool",
                "domain",
                "join",
                dns_domain,
                "DC",
                f"--server={first_address}",
                f"-U{DOMAIN}\\Administrator%{ADMIN_PASSWORD}",
                "--use-kerberos=off",
                f"--targetdir={second_dir}",
                "--dns-backend=NONE",
                f"--option=workgroup = {DOMAIN}",
                f"--option=realm = {REALM}",
                "--option=netbios name = DC2",
                f"--option=interfaces = {second_address}/8",
                "--option=bind interfaces only = yes",
                *private,
            ],
            environ=environ,
        )
        join_seconds = time.monotonic() - started
        second_guid = _ntds_guid(str(second_dir / "private" / "sam.ldb"), "DC2")
        with names.open("a") as out:
            out.write(f"CNAME {second_guid}._msdcs.{dns_domain} dc2.{dns_domain}\n")
        # The snapshot's certificate names both addresses, from the CA DC1 is verified with.
        shutil.copytree(first_dir / "private" / "tls", second_dir / "private" / "tls", dirs_exist_ok=True)
        _configure(second_dir / "etc" / "smb.conf")
        _replicating(second_dir / "etc" / "smb.conf")
        second = _launch(second_dir, second_address, max_runtime, environ=environ)
    except BaseException:
        first.stop()
        raise
    return SambaPair(first, second, join_seconds)


def _resolv_wrapper() -> Path:
    """Where Debian's libresolv-wrapper put the library (it has no soname link: ldconfig does not list it)."""
    for found in [*sorted(Path("/usr/lib").glob(f"*/{RESOLV_WRAPPER}")), Path("/usr/lib") / RESOLV_WRAPPER]:
        if found.is_file():
            return found
    raise RuntimeError(f"{RESOLV_WRAPPER} is missing: apt-get install libresolv-wrapper (scripts/setup --tests)")


def _ntds_guid(sam: str, host: str) -> str:
    """The objectGUID of ``host``'s NTDS Settings: its name in ``<guid>._msdcs.<domain>``."""
    found = _run(
        ["ldbsearch", "-H", sam, "-b", f"CN=Sites,CN=Configuration,{DOMAIN_DN}", "(objectClass=nTDSDSA)", "objectGUID"]
    )
    match = re.search(rf"^dn: CN=NTDS Settings,CN={host},.*\nobjectGUID: ([0-9a-f-]{{36}})$", found, re.MULTILINE)
    if not match:
        raise RuntimeError(f"no NTDS Settings for {host} in {sam}:\n{found}")
    return match.group(1)


def _replicating(conf: Path) -> None:
    """A DC's smb.conf made for a replicating pair: the services replication needs, seconds between pulls."""
    extra = {"server services": _REPLICATING_SERVICES, **_REPLICATION_TUNING}
    text = conf.read_text()
    for name in extra:
        text = re.sub(rf"^\s*{re.escape(name)}\s*=.*\n", "", text, flags=re.MULTILINE)
    lines = "".join(f"\t{name} = {value}\n" for name, value in extra.items())
    conf.write_text(text.replace("[global]\n", "[global]\n" + lines, 1))


# -- helpers -----------------------------------------------------------------------


def filetime(moment: datetime) -> int:
    """Windows FILETIME: 100 ns intervals since 1601-01-01 UTC."""
    return (moment - datetime(1601, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 10


def _replace(name: str, value: str) -> list[tuple[str, str]]:
    return [("replace", name), (name, value), ("-", "")]


def _unicode_pwd(password: str) -> str:
    return '"' + password + '"'  # encoded to UTF-16-LE by _ldif


def _ldif(records: Iterable[list[tuple[str, str]]]) -> str:
    out = []
    for record in records:
        lines = []
        for name, value in record:
            if name == "-":
                lines.append("-\n")
            elif name == "unicodePwd":
                lines.append(f"unicodePwd:: {base64.b64encode(value.encode('utf-16-le')).decode('ascii')}\n")
            elif name in ("changetype", "replace") or re.fullmatch(r"[!-9;=-~][ -~]*", value):
                lines.append(f"{name}: {value}\n")
            else:
                lines.append(f"{name}:: {base64.b64encode(value.encode()).decode('ascii')}\n")
        out.append("".join(lines))
    return "\n".join(out)


def _ldb(tool: str, sam: str, ldif: str, *controls: str) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".ldif", encoding="utf-8") as handle:
        handle.write(ldif)
        handle.flush()
        _run([tool, "-H", sam, *(f"--controls={c}" for c in controls), handle.name])


def _copy(source: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    # cp keeps the xattrs (NT ACLs on sysvol) and is faster than copytree.
    _run(["cp", "-a", str(source), str(target)])
    _rehome(target)


def _rehome(target: Path) -> None:
    """Point a domain copied or moved to ``target`` at its new place."""
    # smb.conf is the only file naming its directory: the one it was provisioned in.
    conf = target / "etc" / "smb.conf"
    text = conf.read_text()
    found = re.search(r"^\s*private dir\s*=\s*(.+)/private\s*$", text, re.MULTILINE)
    if not found:
        raise RuntimeError(f"{conf} names no private dir")
    conf.write_text(text.replace(found.group(1), str(target.resolve())))


def _run(command: list[str], cwd: str | None = None, environ: dict[str, str] | None = None) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, env=environ)
    if done.returncode != 0:
        shown = " ".join(
            c.split("%", 1)[0] + "%..." if c.startswith("-U") else c if "pass" not in c else c.split("=", 1)[0] + "=..."
            for c in command
        )
        raise RuntimeError(f"{shown} failed ({done.returncode}):\n{done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def _tail(logs: Path, lines: int = 20) -> str:
    text = []
    for path in sorted(logs.glob("*")):
        with contextlib.suppress(OSError):
            text += path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(text) or "(no log)"
