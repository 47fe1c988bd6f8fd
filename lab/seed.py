"""Directory content for the lab: every account state the application must handle.

States are seeded as operational attributes through slapadd, because LDAP
clients may not write them (pwdChangedTime, pwdFailureTime...) and reaching
them by real binds and waits would be slow and flaky.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

BASE_DN = "dc=partners,dc=example"
PEOPLE_DN = "ou=people," + BASE_DN
SERVICES_DN = "ou=services," + BASE_DN
POLICIES_DN = "ou=policies," + BASE_DN
SERVICE_DN = "cn=sspm," + SERVICES_DN
#: The account SSPM creates, changes, moves and deletes accounts as: nothing else.
PROVISIONING_DN = "cn=sspm-provisioning," + SERVICES_DN
#: OUs below the people's, where provisioning can place and move accounts.
PEOPLE_OUS = ("Staff", "Contractors")
DEFAULT_POLICY_DN = "cn=default," + POLICIES_DN
SERVICE_POLICY_DN = "cn=service," + POLICIES_DN
MAIL_DOMAIN = "partners.example"

STATES = ("normal", "temporary", "expired", "locked", "disabled", "expiring")
MAX_AGE = timedelta(days=90)
EXPIRE_WARNING = timedelta(days=14)
EXPIRES_IN = timedelta(days=5)  # "expiring" accounts: inside EXPIRE_WARNING
SET_BEFORE = timedelta(days=1)  # when the other accounts' passwords were set
MAX_FAILURE = 5
BENCH_PASSWORD = "Bench-Lantern-Quarry-2024"


@dataclass(frozen=True)
class SeedAccount:
    uid: str
    given_name: str
    surname: str
    password: str
    state: str
    mail: str | None = None
    #: The organization the account belongs to (OpenLDAP ``o``, AD ``company``: see ORGANIZATION_ATTRIBUTES).
    organization: str | None = None

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"unknown state {self.state!r}; expected one of {STATES}")

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.surname}"

    @property
    def dn(self) -> str:
        return f"uid={self.uid},{PEOPLE_DN}"


#: The organizations the lab's accounts belong to: a hospital and a clinic sharing one domain.
ST_MARY = "st-mary"
NORTH_CLINIC = "north-clinic"
#: Where each lab directory keeps an account's organization (SSPM_ORGANIZATION_FROM=attribute:<this>).
ORGANIZATION_ATTRIBUTES = {"openldap": "o", "ad": "company"}


def _account(
    uid: str,
    given: str,
    sur: str,
    password: str,
    state: str,
    mail: str | None = None,
    organization: str | None = ST_MARY,
) -> SeedAccount:
    return SeedAccount(uid, given, sur, password, state, mail or f"{uid}@{MAIL_DOMAIN}", organization)


DEMO_ACCOUNTS: tuple[SeedAccount, ...] = (
    _account("jsmith", "John", "Smith", "Winter-Harbour-42", "normal"),
    _account("lsmith", "Laura", "Smith", "Copper-Meadow-Lantern-17", "normal", organization=NORTH_CLINIC),
    _account("tnguyen", "Thanh", "Nguyen", "Silver-Canyon-Ember-63", "temporary"),
    _account("mdubois", "Marie", "Dubois", "Quiet-River-Falcon-28", "expired", organization=NORTH_CLINIC),
    _account("klee", "Kevin", "Lee", "Amber-Tundra-Violet-51", "locked"),
    _account("rpatel", "Ravi", "Patel", "Granite-Orchid-Pilot-74", "disabled", organization=NORTH_CLINIC),
    _account("achen", "Alice", "Chen", "Velvet-Summit-Harbor-39", "expiring"),
    # mail is IA5String: a non-ASCII person still needs an ASCII address.
    _account(
        "éloïse",
        "Éloïse",
        "Côté",
        "Crimson-Glacier-Meadow-86",
        "normal",
        f"eloise.cote@{MAIL_DOMAIN}",
        organization=NORTH_CLINIC,
    ),
)

#: Accounts the demo makes staff (lab/demo.py grants their roles), beside DEMO_ACCOUNTS;
#: kept apart so the tests' accounts-by-state and search expectations stay as they are.
STAFF_ACCOUNTS: tuple[SeedAccount, ...] = (
    _account("super1", "Sam", "Superadmin", "Harbor-Beacon-Summit-61", "normal", organization=None),
    _account("admin1", "Ada", "Admin", "Falcon-Pebble-Orchard-35", "normal"),
    _account("manager1", "Manon", "Manager", "Cedar-Ripple-Lantern-47", "normal"),
    _account("helpdesk1", "Hugo", "Helpdesk", "Maple-Comet-Violet-82", "normal"),
    _account("helpdesk2", "Nadia", "Northdesk", "Tundra-Quill-Harbor-29", "normal", organization=NORTH_CLINIC),
)


@dataclass(frozen=True)
class DemoPerson:
    """An Employee or a Clinician the demo keeps a record of (sspm.people), already set up.

    Not in the seeded LDIF: the demo provisions each through the connector, as
    creating a record does, so the OpenLDAP and the AD demo make them alike.
    """

    kind: str
    uid: str
    given_name: str
    surname: str
    password: str
    organization: str
    title: str
    department: str
    language: str
    college: str = ""
    registration_number: str = ""
    specialty: str = ""
    mobile: str = ""

    @property
    def mail(self) -> str:
        return f"{self.uid}@{MAIL_DOMAIN}"


#: The demo's records, two organizations, both sections; names in more than ASCII on purpose.
DEMO_PEOPLE: tuple[DemoPerson, ...] = (
    DemoPerson(
        "employee", "ndiallo", "Nadia", "Diallo", "Lantern-Orchid-Meadow-24", ST_MARY, "Ward clerk", "Admissions", "fr"
    ),
    DemoPerson(
        "employee", "pobrien", "Patrick", "O'Brien", "Pebble-Canyon-Harbor-63", NORTH_CLINIC, "Receptionist",
        "Front desk", "en",
    ),
    DemoPerson(
        "clinician", "ctremblay", "Chloé", "Tremblay", "Violet-Summit-Quarry-48", ST_MARY, "Nurse", "Cardiology", "fr",
        "Ordre des infirmières et infirmiers du Québec", "2019-1234", "Cardiology", "+15145550147",
    ),
    DemoPerson(
        "clinician", "akhan", "Amir", "Khan", "Ember-Falcon-Meadow-52", NORTH_CLINIC, "Physician", "Family medicine",
        "en", "College of Physicians and Surgeons of Ontario", "98765", "Family medicine", "+16135550199",
    ),
)  # fmt: skip


def bench_accounts(n: int) -> list[SeedAccount]:
    """Interchangeable accounts sharing BENCH_PASSWORD: load tools need no lookup."""
    return [_account(f"bench{i:04d}", "Bench", f"User {i:04d}", BENCH_PASSWORD, "normal") for i in range(1, n + 1)]


def ssha(password: str) -> str:
    """{SSHA} is what slapd itself stores: seeded and changed passwords look alike."""
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()  # noqa: S324 - the {SSHA} scheme is SHA-1 by definition
    return "{SSHA}" + base64.b64encode(digest + salt).decode("ascii")


def gentime(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")


def seed_ldif(
    accounts: Iterable[SeedAccount],
    service_password: str,
    now: datetime | None = None,
    *,
    provisioning_password: str = "",
) -> str:
    """The whole tree for slapadd, parents first (slapadd does not reorder).

    With ``provisioning_password``, the provisioning account too.
    """
    now = now or datetime.now(UTC)
    people = ("".join(_line(k, v) for k, v in _person(a, now)) for a in accounts)
    extra = [_provisioning(provisioning_password)] if provisioning_password else []
    return "\n".join([_tree(service_password), *extra, *people])


def _provisioning(password: str) -> str:
    """The provisioning account, and the OUs it places people in.

    Under the service policy: it must not lock or expire either.
    """
    ous = "".join(f"\ndn: ou={ou},{PEOPLE_DN}\nobjectClass: organizationalUnit\nou: {ou}\n" for ou in PEOPLE_OUS)
    return f"""\
dn: {PROVISIONING_DN}
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: sspm-provisioning
userPassword: {ssha(password)}
pwdPolicySubentry: {SERVICE_POLICY_DN}
{ous}"""


def _tree(service_password: str) -> str:
    # The service account gets its own policy: under the default one, five bad
    # binds would lock the application out, and its password would expire.
    return f"""\
dn: {BASE_DN}
objectClass: dcObject
objectClass: organization
dc: partners
o: Partners

dn: {PEOPLE_DN}
objectClass: organizationalUnit
ou: people

dn: {SERVICES_DN}
objectClass: organizationalUnit
ou: services

dn: {POLICIES_DN}
objectClass: organizationalUnit
ou: policies

dn: {DEFAULT_POLICY_DN}
objectClass: device
objectClass: pwdPolicy
cn: default
pwdAttribute: userPassword
pwdMaxFailure: {MAX_FAILURE}
pwdLockout: TRUE
pwdLockoutDuration: 1800
pwdMustChange: TRUE
pwdAllowUserChange: TRUE
pwdInHistory: 5
pwdMinLength: 8
pwdCheckQuality: 2
pwdMaxAge: {int(MAX_AGE.total_seconds())}
pwdExpireWarning: {int(EXPIRE_WARNING.total_seconds())}
pwdGraceAuthnLimit: 0
pwdSafeModify: FALSE
pwdMinAge: 0

dn: {SERVICE_POLICY_DN}
objectClass: device
objectClass: pwdPolicy
cn: service
pwdAttribute: userPassword

dn: {SERVICE_DN}
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: sspm
userPassword: {ssha(service_password)}
pwdPolicySubentry: {SERVICE_POLICY_DN}
authzTo: dn.regex:^uid=[^,]+,(ou=[^,]+,)*{PEOPLE_DN}$
"""


def _person(a: SeedAccount, now: datetime) -> list[tuple[str, str]]:
    age = {"expired": timedelta(days=365), "expiring": MAX_AGE - EXPIRES_IN}
    # Set the day before, as in life: a password stamped the very second a test
    # starts would void the links sent in its first seconds (sspm.tokens.outdated).
    changed = now - age.get(a.state, SET_BEFORE)
    attrs = [
        ("dn", a.dn),
        ("objectClass", "inetOrgPerson"),
        ("uid", a.uid),
        ("cn", a.display_name),
        ("sn", a.surname),
        ("givenName", a.given_name),
        ("displayName", a.display_name),
    ]
    if a.mail is not None:
        attrs.append(("mail", a.mail))
    if a.organization is not None:
        attrs.append((ORGANIZATION_ATTRIBUTES["openldap"], a.organization))
    # Without pwdChangedTime an entry never expires.
    attrs += [("userPassword", ssha(a.password)), ("pwdChangedTime", gentime(changed))]
    if a.state == "temporary":
        attrs.append(("pwdReset", "TRUE"))
    elif a.state == "locked":
        attrs.append(("pwdAccountLockedTime", gentime(now)))
        attrs += (("pwdFailureTime", gentime(now - timedelta(seconds=i))) for i in range(MAX_FAILURE))
    elif a.state == "disabled":
        attrs.append(("pwdAccountLockedTime", "000001010000Z"))  # permanent lock
    return attrs


def _line(attr: str, value: str) -> str:
    # RFC 2849 SAFE-STRING, conservatively: anything else goes base64.
    if re.fullmatch(r"[!-9;=-~][ -~]*", value) and not value.endswith(" "):
        return f"{attr}: {value}\n"
    return f"{attr}:: {base64.b64encode(value.encode()).decode('ascii')}\n"
