"""Where SSPM's logs go, set up once per process.

The audit trail's copies (ASVS 16.4.3: kept on a separate system) leave
through their own logger, which nothing else writes to and which does not
propagate into the application log.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path
from urllib.parse import urlsplit

#: Each committed audit event, as one JSON line (sspm.account.audit writes it).
AUDIT_EVENTS = logging.getLogger("sspm.audit.events")
AUDIT_EVENTS.propagate = False
_shipper = AUDIT_EVENTS


def ship_to(syslog: str = "", json_file: Path | None = None) -> None:
    """Send each event, once committed, to syslog and/or a JSON-lines file (ASVS 16.4.3).

    ``syslog`` is ``udp://host:port`` or the path of a local socket
    (``/dev/log``). Replaces what an earlier call set up; neither: off.
    Raises OSError when the file cannot be opened; a syslog socket not
    listening yet is tried again at each event, as openlog() does. A copy
    that cannot be delivered (syslog away) is lost, never a reason to
    refuse the user: the chain in the database stays the record.
    """
    for handler in list(_shipper.handlers):
        _shipper.removeHandler(handler)
        handler.close()
    if syslog:
        if syslog.startswith("udp://"):
            where = urlsplit(syslog)
            address: str | tuple[str, int] = (where.hostname or "127.0.0.1", where.port or 514)
        else:
            address = syslog
        to_syslog = logging.handlers.SysLogHandler(address=address, facility=logging.handlers.SysLogHandler.LOG_AUTH)
        to_syslog.setFormatter(logging.Formatter("sspm-audit: %(message)s"))
        _shipper.addHandler(to_syslog)
    if json_file is not None:
        to_file = logging.FileHandler(json_file, encoding="utf-8")  # opened now: a wrong path stops the start
        to_file.setFormatter(logging.Formatter("%(message)s"))
        _shipper.addHandler(to_file)
    _shipper.setLevel(logging.INFO if _shipper.handlers else logging.CRITICAL + 1)
