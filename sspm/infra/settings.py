"""SSPM's configuration: documented defaults, then .env, then the environment.

Every key and its default is in ``config/defaults.env`` (with what it does);
``config/example.env`` lists them for an operator. Reading happens once, at
start, and anything wrong stops the app with one line naming the key.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import phonenumbers
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from dotenv import dotenv_values

from connectors import KINDS
from connectors.settings import DirectorySettings
from sspm.infra import metrics, redisconn
from sspm.infra.sms import SmsSettings
from sspm.infra.smtp import SmtpSettings
from sspm.policy.expiry import BadThresholds, thresholds
from sspm.policy.organizations import BadOrganizationSource, OrganizationSource

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS_FILE = ROOT / "config" / "defaults.env"


#: SSPM_HELPDESK_VERIFICATION's values: verify the caller before any action, or may, or never.
HELPDESK_VERIFICATION = ("required", "optional", "off")
#: SSPM_HELPDESK_RESET's values: a temporary password the agent reads out, or an emailed set-password link.
HELPDESK_RESET = ("temporary", "link")


#: The range each whole-number setting must fall in, and its unit, checked as it is read. Below the least, a
#: flow cannot work (a link dead on arrival, a session over as it starts, a wait of 0 that never ends); past
#: the most, nobody means it, and far past it a date leaves datetime's range or Redis refuses the TTL, so the
#: flow using it fails at every request instead of at the start. config/defaults.env says each range.
BOUNDS: dict[str, tuple[int, int, str]] = {
    "LDAP_CONNECT_TIMEOUT": (1, 60, "seconds"),
    "LDAP_TIMEOUT": (1, 3600, "seconds"),
    "LDAP_POOL_SIZE": (1, 64, "connections"),
    "LDAP_MAX_CALLS": (1, 64, "calls"),
    "LDAP_QUEUE_TIMEOUT": (0, 60, "seconds"),
    "LDAP_RETRY_AFTER": (1, 3600, "seconds"),
    "LDAP_PREFER_AFTER": (1, 86400, "seconds"),
    "SSPM_MIN_STRENGTH": (0, 4, "(a zxcvbn score)"),
    "SSPM_SESSION_IDLE_MINUTES": (1, 1440, "minutes"),
    "SSPM_SESSION_MAX_HOURS": (1, 168, "hours"),
    "SSPM_STAFF_SESSION_IDLE_MINUTES": (1, 1440, "minutes"),
    "SSPM_STAFF_SESSION_MAX_HOURS": (1, 168, "hours"),
    "SSPM_STAFF_REAUTH_MINUTES": (1, 1440, "minutes"),
    "SSPM_HELPDESK_VERIFY_MINUTES": (1, 1440, "minutes"),
    "SSPM_MIN_ANSWER_LENGTH": (1, 64, "characters"),
    "SSPM_CHALLENGE_SECONDS": (1, 3600, "seconds"),
    "SSPM_RECOVERY_MAX_FAILURES": (1, 1000000, "failures"),
    "SSPM_RECOVERY_WINDOW_MINUTES": (1, 10080, "minutes"),
    "SSPM_TRUSTED_PROXIES": (0, 10, "proxies"),
    "SSPM_METRICS_PORT": (0, 65535, "(0: not served)"),
    "SSPM_SMTP_PORT": (1, 65535, "(a TCP port)"),
    "SSPM_SMTP_TIMEOUT": (1, 300, "seconds"),
    "SSPM_SMS_TIMEOUT": (1, 60, "seconds"),
    "SSPM_RESET_LINK_MINUTES": (1, 1440, "minutes"),
    "SSPM_SETUP_LINK_HOURS": (1, 720, "hours"),
    "SSPM_CLOCK_SKEW_SECONDS": (0, 300, "seconds"),
}
#: Each of SSPM_EMAIL_RETRY_SECONDS's waits (0: at once), and how many retries at most.
RETRY_SECONDS_MOST, RETRIES_MOST = 86400, 20


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the key and the fix."""


@dataclass(frozen=True)
class Settings:
    secret_key: str
    public_base_url: str
    domain_name: str
    lra_contact: str
    languages: tuple[str, ...]
    default_language: str
    redis_url: str
    database_url: str
    #: Where audit events are also sent as they happen (sspm.infra.logs.ship_to); empty/None: nowhere.
    audit_syslog: str
    audit_json_file: Path | None
    limit_per_ip: str
    limit_per_account: str
    #: Mail domains whose addresses key on their local part (SSPM_LOGIN_MAIL_DOMAINS; see sspm.logins).
    login_mail_domains: tuple[str, ...]
    min_strength: int
    session_idle_minutes: int
    session_max_hours: int
    #: The staff realm's own timeouts (sspm.web.auth), and how recent a password its sensitive actions need.
    staff_session_idle_minutes: int
    staff_session_max_hours: int
    staff_reauth_minutes: int
    #: The Fernet key staff TOTP secrets are encrypted with at rest (see ``staff_totp_key``).
    staff_totp_key: str
    #: How an account belongs to an organization (SSPM_ORGANIZATION_FROM; sspm.policy.organizations).
    organization_from: OrganizationSource
    questions_file: Path
    questions_offered: int
    questions_answered: int
    questions_asked: int
    min_answer_length: int
    challenge_seconds: int
    recovery_max_failures: int
    recovery_window_minutes: int
    trusted_proxies: int
    timezone: str
    smtp: SmtpSettings
    reset_link_minutes: int
    #: How far the directory's clock may be from SSPM's (SSPM_CLOCK_SKEW_SECONDS).
    clock_skew_seconds: int
    email_retry_seconds: tuple[int, ...]
    limit_email_per_account: str
    limit_email_per_ip: str
    directory_kind: str
    directory: DirectorySettings
    #: The helpdesk (sspm.helpdesk): whether a caller must be verified before the agent sees the lockout
    #: insight and acts (required, optional, off), how long a verification lasts, and how a forced reset
    #: reaches the caller (a temporary password the agent reads out, or an emailed link).
    helpdesk_verification: str = "required"
    helpdesk_verify_minutes: int = 5
    helpdesk_reset: str = "temporary"
    #: Where a new user signs in once set up (SSPM_SETUP_NEXT_URL); empty: SSPM's own home page.
    setup_next_url: str = ""

    #: How long a new user's set-up link works (SSPM_SETUP_LINK_HOURS).
    setup_link_hours: int = 72
    #: Where each section's new accounts go (SSPM_PEOPLE_*_LOCATION): see :func:`people_location`.
    people_employees_location: str = ""
    people_clinicians_location: str = ""
    #: How text messages leave (sspm.infra.sms): a local catcher (demo, tests) or an HTTP gateway.
    sms: SmsSettings = field(default_factory=SmsSettings)
    #: The country a phone number typed without its +country code is read in (SSPM_PHONE_REGION, ISO 3166).
    phone_region: str = "CA"
    #: Who may read /metrics (SSPM_METRICS_ALLOWED: the client's address, behind SSPM_TRUSTED_PROXIES), and where
    #: a worker or the scheduler serves its own (SSPM_METRICS_ADDRESS, SSPM_METRICS_PORT; 0: not served).
    metrics_allowed: tuple[metrics.Network, ...] = metrics.parse_networks("127.0.0.1,::1")
    metrics_address: str = "127.0.0.1"
    metrics_port: int = 0
    #: Days an email event and a job run are kept before the clean-up job deletes them (sspm.account.cleanup).
    email_event_retention_days: int = 90
    job_run_retention_days: int = 30
    #: SSPM_REMINDER_DAYS: days before a password expires when its owner is reminded, largest first.
    reminder_days: tuple[int, ...] = (14, 7, 3, 1)
    #: How log lines look (SSPM_LOG_FORMAT: json or text) and the least level kept (SSPM_LOG_LEVEL): sspm.infra.logs.
    log_format: str = "json"
    log_level: str = "INFO"

    @property
    def https(self) -> bool:
        """Cookies get Secure and responses HSTS only when served over HTTPS."""
        return urlsplit(self.public_base_url).scheme == "https"


def read_values(env_file: Path | None = None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Merge defaults, the .env file and the environment, in that order."""
    values: dict[str, str] = {}
    for source in (DEFAULTS_FILE, env_file if env_file is not None else ROOT / ".env"):
        if source.is_file():
            values.update({k: v or "" for k, v in dotenv_values(source).items()})
    known = set(values)
    environment = os.environ if environ is None else environ
    values.update({k: v for k, v in environment.items() if k in known})
    return values


def load(env_file: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    values = read_values(env_file, environ)

    def text(key: str) -> str:
        return values.get(key, "").strip()

    def number(key: str) -> int:
        try:
            value = int(text(key))
        except ValueError:
            raise ConfigError(f"{key} must be a whole number (got {text(key)!r})") from None
        least, most, unit = BOUNDS.get(key, (0, value, ""))
        if not least <= value <= most:
            if key in BOUNDS:
                raise ConfigError(f"{key} must be from {least} to {most} {unit} (got {value})")
            raise ConfigError(f"{key} must not be negative (got {value})")
        return value

    def flag(key: str) -> bool:
        return text(key).lower() in ("1", "true", "yes", "on")

    secret = text("SSPM_SECRET_KEY")
    if len(secret) < 32:
        raise ConfigError("SSPM_SECRET_KEY must be set to a random value of at least 32 characters")
    base_url = text("SSPM_PUBLIC_BASE_URL").rstrip("/")
    if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).netloc:
        raise ConfigError(f"SSPM_PUBLIC_BASE_URL must be an absolute http(s) URL (got {base_url!r})")
    languages = tuple(code.strip() for code in text("SSPM_LANGUAGES").split(",") if code.strip())
    default_language = text("SSPM_DEFAULT_LANGUAGE")
    if default_language not in languages:
        raise ConfigError(f"SSPM_DEFAULT_LANGUAGE {default_language!r} is not in SSPM_LANGUAGES")
    # The pages and emails are written in English; every other language is read from its
    # compiled catalogue (git-ignored), without which it would be English labelled as that language.
    for code in languages:
        if code != "en" and not (ROOT / "sspm" / "translations" / code / "LC_MESSAGES" / "messages.mo").is_file():
            raise ConfigError(
                f"SSPM_LANGUAGES lists {code!r} but its translations are not compiled: "
                "run scripts/setup (or .venv/bin/pybabel compile -d sspm/translations)"
            )

    if text("DIRECTORY_KIND") not in KINDS:
        raise ConfigError(f"DIRECTORY_KIND must be one of {', '.join(KINDS)} (got {text('DIRECTORY_KIND')!r})")

    def secret_of(key: str) -> str:
        """``KEY``, or the content of the file ``KEY_FILE`` names (a secret kept out of the environment)."""
        path = text(f"{key}_FILE")
        if not path:
            return text(key)
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{key}_FILE cannot be read: {exc.strerror}") from None

    try:
        organization_from = OrganizationSource.parse(text("SSPM_ORGANIZATION_FROM"))
    except BadOrganizationSource as exc:
        raise ConfigError(f"SSPM_ORGANIZATION_FROM: {exc}") from None
    helpdesk_verification = text("SSPM_HELPDESK_VERIFICATION").lower()
    if helpdesk_verification not in HELPDESK_VERIFICATION:
        raise ConfigError(
            f"SSPM_HELPDESK_VERIFICATION must be required, optional or off (got {helpdesk_verification!r})"
        )
    helpdesk_reset = text("SSPM_HELPDESK_RESET").lower()
    if helpdesk_reset not in HELPDESK_RESET:
        raise ConfigError(f"SSPM_HELPDESK_RESET must be temporary or link (got {helpdesk_reset!r})")
    totp_key_source = secret_of("SSPM_STAFF_TOTP_KEY")
    if totp_key_source and len(totp_key_source) < 32:
        raise ConfigError("SSPM_STAFF_TOTP_KEY must be a random value of at least 32 characters (or empty)")

    password = secret_of("LDAP_BIND_PASSWORD")
    ca_file = text("LDAP_CA_FILE")
    directory = DirectorySettings(
        url=text("LDAP_URL"),
        bind_dn=text("LDAP_BIND_DN"),
        bind_password=password,
        base_dn=text("LDAP_BASE_DN"),
        user_filter=text("LDAP_USER_FILTER"),
        policy_dn=text("LDAP_POLICY_DN"),
        ca_file=Path(ca_file) if ca_file else None,
        starttls=flag("LDAP_STARTTLS"),
        connect_timeout=number("LDAP_CONNECT_TIMEOUT"),
        timeout=number("LDAP_TIMEOUT"),
        pool_size=number("LDAP_POOL_SIZE"),
        max_calls=number("LDAP_MAX_CALLS"),
        queue_timeout=number("LDAP_QUEUE_TIMEOUT"),
        retry_after=number("LDAP_RETRY_AFTER"),
        prefer_after=number("LDAP_PREFER_AFTER"),
        provision_base_dn=text("LDAP_PROVISION_BASE_DN"),
        provisioning_bind_dn=text("LDAP_PROVISIONING_BIND_DN"),
        provisioning_bind_password=secret_of("LDAP_PROVISIONING_BIND_PASSWORD"),
        organization_attribute=organization_from.attribute,
    )
    problems = directory.problems()
    if problems:
        raise ConfigError(problems[0])
    questions_file = ROOT / text("SSPM_QUESTIONS_FILE")
    if not questions_file.is_file():
        raise ConfigError(f"SSPM_QUESTIONS_FILE {questions_file} does not exist")
    answered, asked = number("SSPM_QUESTIONS_ANSWERED"), number("SSPM_QUESTIONS_ASKED")
    if not 1 <= asked <= answered <= number("SSPM_QUESTIONS_OFFERED"):
        raise ConfigError("need 1 <= SSPM_QUESTIONS_ASKED <= SSPM_QUESTIONS_ANSWERED <= SSPM_QUESTIONS_OFFERED")
    for key in ("SSPM_REDIS_URL", "SSPM_DATABASE_URL"):
        if not text(key):
            raise ConfigError(f"{key} is not set")
    redis_problem = redisconn.problem(text("SSPM_REDIS_URL"))
    if redis_problem:
        raise ConfigError(redis_problem)
    log_format, log_level = text("SSPM_LOG_FORMAT").lower(), text("SSPM_LOG_LEVEL").upper()
    if log_format not in ("json", "text"):
        raise ConfigError(f"SSPM_LOG_FORMAT must be json or text (got {log_format!r})")
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"SSPM_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR (got {log_level!r})")
    audit_syslog = text("SSPM_AUDIT_SYSLOG")
    syslog_ok = audit_syslog.startswith("/") or (audit_syslog.startswith("udp://") and urlsplit(audit_syslog).port)
    if audit_syslog and not syslog_ok:
        raise ConfigError(f"SSPM_AUDIT_SYSLOG must be udp://host:port or a socket path like /dev/log: {audit_syslog!r}")
    smtp_ca = text("SSPM_SMTP_CA_FILE")
    smtp = SmtpSettings(
        host=text("SSPM_SMTP_HOST"),
        port=number("SSPM_SMTP_PORT"),
        security=text("SSPM_SMTP_SECURITY"),
        ca_file=Path(smtp_ca) if smtp_ca else None,
        user=text("SSPM_SMTP_USER"),
        password=values.get("SSPM_SMTP_PASSWORD", ""),
        timeout=number("SSPM_SMTP_TIMEOUT"),
        sender=text("SSPM_MAIL_FROM"),
    )
    if smtp.problems():
        raise ConfigError(smtp.problems()[0])
    setup_next_url = text("SSPM_SETUP_NEXT_URL")
    if setup_next_url and (
        urlsplit(setup_next_url).scheme not in ("http", "https") or not urlsplit(setup_next_url).netloc
    ):
        raise ConfigError(f"SSPM_SETUP_NEXT_URL must be empty or an absolute http(s) URL (got {setup_next_url!r})")
    for key in ("SSPM_PEOPLE_EMPLOYEES_LOCATION", "SSPM_PEOPLE_CLINICIANS_LOCATION"):
        try:
            people_location(text(key), "organization")
        except ValueError as exc:
            raise ConfigError(f"{key}: {exc}") from None
    try:
        retries = tuple(int(part) for part in text("SSPM_EMAIL_RETRY_SECONDS").split(",") if part.strip())
    except ValueError:
        raise ConfigError("SSPM_EMAIL_RETRY_SECONDS must be whole numbers separated by commas") from None
    if len(retries) > RETRIES_MOST or any(not 0 <= wait <= RETRY_SECONDS_MOST for wait in retries):
        raise ConfigError(
            f"SSPM_EMAIL_RETRY_SECONDS must be at most {RETRIES_MOST} waits, each from 0 to {RETRY_SECONDS_MOST}"
            f" seconds (got {text('SSPM_EMAIL_RETRY_SECONDS')!r})"
        )
    sms_dir = Path(text("SSPM_SMS_DIR") or "tmp/sms")
    sms = SmsSettings(
        sender=text("SSPM_SMS_SENDER").lower(),
        directory=sms_dir if sms_dir.is_absolute() else ROOT / sms_dir,
        gateway_url=text("SSPM_SMS_GATEWAY_URL"),
        gateway_token=secret_of("SSPM_SMS_GATEWAY_TOKEN"),
        timeout=number("SSPM_SMS_TIMEOUT"),
    )
    if sms.problems():
        raise ConfigError(sms.problems()[0])
    phone_region = text("SSPM_PHONE_REGION").upper()
    if phone_region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(
            f"SSPM_PHONE_REGION must be a two-letter country code, such as CA or FR (got {phone_region!r})"
        )
    try:
        metrics_allowed = metrics.parse_networks(text("SSPM_METRICS_ALLOWED"))
    except ValueError as exc:
        raise ConfigError(f"SSPM_METRICS_ALLOWED: {exc}") from None
    mail_domains = tuple(
        d.strip().lower() for d in text("SSPM_LOGIN_MAIL_DOMAINS").split(",") if d.strip()
    ) or _dns_domain(directory.base_dn)
    try:
        reminder_days = thresholds(text("SSPM_REMINDER_DAYS"))
    except BadThresholds as exc:
        raise ConfigError(str(exc)) from None
    return Settings(
        secret_key=secret,
        public_base_url=base_url,
        domain_name=text("SSPM_DOMAIN_NAME"),
        lra_contact=text("SSPM_LRA_CONTACT"),
        languages=languages,
        default_language=default_language,
        redis_url=text("SSPM_REDIS_URL"),
        database_url=text("SSPM_DATABASE_URL"),
        audit_syslog=audit_syslog,
        audit_json_file=Path(text("SSPM_AUDIT_JSON_FILE")) if text("SSPM_AUDIT_JSON_FILE") else None,
        limit_per_ip=text("SSPM_LIMIT_PER_IP"),
        limit_per_account=text("SSPM_LIMIT_PER_ACCOUNT"),
        login_mail_domains=mail_domains,
        min_strength=number("SSPM_MIN_STRENGTH"),
        session_idle_minutes=number("SSPM_SESSION_IDLE_MINUTES"),
        session_max_hours=number("SSPM_SESSION_MAX_HOURS"),
        staff_session_idle_minutes=number("SSPM_STAFF_SESSION_IDLE_MINUTES"),
        staff_session_max_hours=number("SSPM_STAFF_SESSION_MAX_HOURS"),
        staff_reauth_minutes=number("SSPM_STAFF_REAUTH_MINUTES"),
        staff_totp_key=staff_totp_key(totp_key_source or secret),
        organization_from=organization_from,
        questions_file=questions_file,
        questions_offered=number("SSPM_QUESTIONS_OFFERED"),
        questions_answered=answered,
        questions_asked=asked,
        min_answer_length=number("SSPM_MIN_ANSWER_LENGTH"),
        challenge_seconds=number("SSPM_CHALLENGE_SECONDS"),
        recovery_max_failures=number("SSPM_RECOVERY_MAX_FAILURES"),
        recovery_window_minutes=number("SSPM_RECOVERY_WINDOW_MINUTES"),
        trusted_proxies=number("SSPM_TRUSTED_PROXIES"),
        timezone=text("SSPM_TIMEZONE") or "UTC",
        smtp=smtp,
        reset_link_minutes=number("SSPM_RESET_LINK_MINUTES"),
        clock_skew_seconds=number("SSPM_CLOCK_SKEW_SECONDS"),
        email_retry_seconds=retries,
        limit_email_per_account=text("SSPM_LIMIT_EMAIL_PER_ACCOUNT"),
        limit_email_per_ip=text("SSPM_LIMIT_EMAIL_PER_IP"),
        directory_kind=text("DIRECTORY_KIND"),
        directory=directory,
        helpdesk_verification=helpdesk_verification,
        helpdesk_verify_minutes=number("SSPM_HELPDESK_VERIFY_MINUTES"),
        helpdesk_reset=helpdesk_reset,
        setup_link_hours=number("SSPM_SETUP_LINK_HOURS"),
        people_employees_location=text("SSPM_PEOPLE_EMPLOYEES_LOCATION"),
        people_clinicians_location=text("SSPM_PEOPLE_CLINICIANS_LOCATION"),
        setup_next_url=setup_next_url,
        sms=sms,
        phone_region=phone_region,
        metrics_allowed=metrics_allowed,
        metrics_address=text("SSPM_METRICS_ADDRESS") or "127.0.0.1",
        metrics_port=number("SSPM_METRICS_PORT"),
        email_event_retention_days=number("SSPM_EMAIL_EVENT_RETENTION_DAYS"),
        reminder_days=reminder_days,
        job_run_retention_days=number("SSPM_JOB_RUN_RETENTION_DAYS"),
        log_format=log_format,
        log_level=log_level,
    )


def people_location(pattern: str, organization: str) -> tuple[str, ...]:
    """The place (connectors.directory.Location) a SSPM_PEOPLE_*_LOCATION pattern names for ``organization``.

    OU names outermost first, separated by "/", ``{organization}`` replaced
    by the record's organization; empty is the provisioning base. Names only,
    never DN syntax: the connector escapes each. ValueError for an empty
    name between two "/" or a brace that is not ``{organization}``.
    """
    if not pattern.strip():
        return ()
    names = []
    for part in pattern.split("/"):
        name = part.strip()
        if not name:
            raise ValueError(f"an OU name is missing in {pattern!r} (two / in a row, or one at an end)")
        if "{" in name.replace("{organization}", "") or "}" in name.replace("{organization}", ""):
            raise ValueError(f"only {{organization}} may be written in braces (got {pattern!r})")
        names.append(name.replace("{organization}", organization))
    return tuple(names)


def staff_totp_key(source: str) -> str:
    """The Fernet key for staff TOTP secrets, derived (HKDF-SHA256) from SSPM_STAFF_TOTP_KEY or SSPM_SECRET_KEY.

    Derived, so the cookie-signing secret itself never encrypts anything and
    either setting can be any long random text. A key of its own lets an
    operator change SSPM_SECRET_KEY (which signs everyone out) without
    voiding every staff authenticator, and keep it in a file of its own.
    """
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"sspm staff totp secrets v1").derive(
        source.encode()
    )
    return base64.urlsafe_b64encode(derived).decode("ascii")


def _dns_domain(base_dn: str) -> tuple[str, ...]:
    """The DNS name the DC= parts of a DN spell ("ou=people,dc=partners,dc=example": partners.example)."""
    parts = [
        rdn.split("=", 1)[1].strip().lower() for rdn in base_dn.split(",") if rdn.strip().lower().startswith("dc=")
    ]
    return (".".join(parts),) if parts else ()
