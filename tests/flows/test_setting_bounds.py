"""Every whole-number setting has a range, refused at the start with one line naming the key and the range.

Found by an outside operator: SSPM_RESET_LINK_MINUTES, SSPM_SETUP_LINK_HOURS
and SSPM_SESSION_MAX_HOURS at 0, below it, or at a size nobody means
(100000000000) passed ``python -m sspm check`` (0 and below for some);
then the flows that used them broke for every user: a session over as it
starts, a link whose end falls past the year 9999 (datetime overflows as
the email is made), a session nobody is ever signed out of. As with
SSPM_REMINDER_DAYS (c5bac4a), the mistake is refused once, at the start.
"""

from __future__ import annotations

import pytest
from dotenv import dotenv_values

from lab import Slapd
from sspm.infra.settings import BOUNDS, DEFAULTS_FILE, ConfigError, Settings
from tests.flows.test_outsider_operator import said_in_one_line, sspm
from tests.support import Backing, settings_for

ABSURDLY_LARGE = "100000000000"


@pytest.mark.parametrize("value", ["0", "-1", ABSURDLY_LARGE])
@pytest.mark.parametrize("key", ["SSPM_RESET_LINK_MINUTES", "SSPM_SETUP_LINK_HOURS", "SSPM_SESSION_MAX_HOURS"])
def test_the_check_refuses_a_lifetime_no_flow_can_use(slapd: Slapd, backing: Backing, key: str, value: str) -> None:
    """The operator runs the check before going live: it must stop on the setting, not pass and leave it to users."""
    least, most, unit = BOUNDS[key]
    done = sspm(slapd, backing, "check", **{key: value})
    said_in_one_line(done, 2, f"sspm: cannot start: {key} must be from {least} to {most} {unit} (got {value})")


@pytest.mark.parametrize("key", sorted(BOUNDS))
def test_each_bounded_setting_takes_its_range_and_refuses_past_either_end(slapd: Slapd, key: str) -> None:
    """Both ends are usable values; one past either is refused in one line that says the key and the range."""
    least, most, unit = BOUNDS[key]
    for value in (least, most):
        assert isinstance(settings_for(slapd, **{key: str(value)}), Settings), f"{key}={value}"
    for value in (least - 1, most + 1):
        with pytest.raises(ConfigError) as refused:
            settings_for(slapd, **{key: str(value)})
        message = str(refused.value)
        assert "\n" not in message
        assert message == f"{key} must be from {least} to {most} {unit} (got {value})"


def test_every_default_is_within_its_range_and_the_defaults_file_says_the_range() -> None:
    """An operator reads the range where the setting is explained, before the start has to tell them."""
    defaults = dotenv_values(DEFAULTS_FILE)
    text = DEFAULTS_FILE.read_text(encoding="utf-8")
    for key, (least, most, _) in BOUNDS.items():
        assert least <= int(defaults[key] or "") <= most, key
        explained = text[: text.index(f"\n{key}=")]
        block = explained[explained.rindex("\n\n") :]
        assert f"{least} to {most}" in block or f"{least}-{most}" in block, f"{key}: its range in defaults.env"


@pytest.mark.parametrize("retries", ["10,-5", f"10,{86400 + 1}", ",".join(["1"] * 21)])
def test_email_retry_waits_past_a_day_or_below_zero_are_refused(slapd: Slapd, retries: str) -> None:
    """A negative wait or one of years would fail or park every email job; 0 (at once, as the tests use) is fine."""
    with pytest.raises(ConfigError, match="SSPM_EMAIL_RETRY_SECONDS must be at most 20 waits, each from 0 to 86400"):
        settings_for(slapd, SSPM_EMAIL_RETRY_SECONDS=retries)
    assert settings_for(slapd, SSPM_EMAIL_RETRY_SECONDS="0,0,86400").email_retry_seconds == (0, 0, 86400)
