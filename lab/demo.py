"""Run SSPM against a local demo PARTNERS domain: ``scripts/demo``.

Everything lives under .demo/ (git-ignored): the directory's database (so a
changed password survives a restart), its CA, and the app's settings with a
secret generated once. Ports: DEMO_PORT (web, default 8000),
DEMO_LDAPS_PORT / DEMO_LDAP_PORT (directory, default 10636 / 10389).
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from lab.env import sspm_environ
from lab.seed import DEMO_ACCOUNTS
from lab.slapd import start_slapd

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"

_STATE_TEXT = {
    "normal": "can sign in; change it for any reason",
    "temporary": "temporary password: must change it before anything else",
    "expired": "expired password: change it with the expired one",
    "locked": "locked after 5 wrong passwords",
    "disabled": "disabled by an administrator",
    "expiring": "expires in about 5 days",
}


def _secret() -> str:
    path = DEMO / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _accounts_table() -> str:
    rows = [f"  {'user name':<10} {'password':<26} state"]
    rows += [f"  {a.uid:<10} {a.password:<26} {_STATE_TEXT[a.state]}" for a in DEMO_ACCOUNTS]
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "8000")))
    args = parser.parse_args()
    DEMO.mkdir(exist_ok=True)
    slapd = start_slapd(
        DEMO / "directory",
        ldaps_port=int(os.environ.get("DEMO_LDAPS_PORT", "10636")),
        ldap_port=int(os.environ.get("DEMO_LDAP_PORT", "10389")),
        reuse=True,
    )
    base_url = f"http://127.0.0.1:{args.port}"
    environ = {**os.environ, **sspm_environ(slapd, SSPM_SECRET_KEY=_secret(), SSPM_PUBLIC_BASE_URL=base_url)}
    print(
        f"\nSSPM demo: PARTNERS directory at {slapd.ldaps_url} (data in {DEMO / 'directory'})\n"
        f"Open {base_url}/ (phone layout: {base_url}/m)\n\n"
        f"Demo accounts (passwords as seeded; a password you change stays changed; rm -r .demo to reseed):\n"
        f"{_accounts_table()}\n\nCtrl-C stops the demo.\n",
        flush=True,
    )
    command = [sys.executable, "-m", "gunicorn", "--preload", "--workers", "2", "--threads", "4"]
    command += ["--bind", f"127.0.0.1:{args.port}", "--access-logfile", "-", "sspm.wsgi:app"]
    web = subprocess.Popen(command, env=environ, cwd=ROOT)
    # Stopped by Ctrl-C or by SIGTERM alike: take the web app and the directory down with us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        return web.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        web.terminate()
        web.wait()
        slapd.stop()


if __name__ == "__main__":
    sys.exit(main())
