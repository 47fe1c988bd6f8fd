"""Operator commands.

``python -m sspm migrate``: create or upgrade SSPM's database schema.
``python -m sspm check``: prove the configuration, the directory, Redis
and the database all work, before serving anyone.
``python -m sspm audit verify``: walk the audit trail's hash chain and name
the first row that was altered, removed or inserted (exit code 1).
"""

from __future__ import annotations

import argparse
import sys

from connectors.directory import DirectoryError
from sspm.account.audit import check_chain
from sspm.infra import settings as settings_module
from sspm.infra.services import build
from sspm.infra.settings import ConfigError
from sspm.infra.state import StateUnavailable
from sspm.infra.store import Store, head_revision, migrate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sspm")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="prove the settings, the directory, Redis and the database work")
    commands.add_parser("migrate", help="create or upgrade the database schema")
    audit = commands.add_parser("audit", help="the audit trail")
    audit.add_argument("audit_command", choices=["verify"], help="walk the hash chain and report the first break")
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "migrate":
            migrate(settings_module.load().database_url)
            print("sspm: database schema is current")
            return 0
        if arguments.command == "audit":
            return verify_audit(settings_module.load().database_url)
        build(settings_module.load()).close()  # what the web app and the worker build, without either
    except (ConfigError, DirectoryError, StateUnavailable) as exc:
        print(f"sspm: cannot start: {exc}", file=sys.stderr)
        return 2
    print("sspm: configuration, directory, Redis and database OK")
    return 0


def verify_audit(database_url: str) -> int:
    """0 when the chain holds from its first row to its head; 1 at the first break; 2 if it cannot be read."""
    store = Store(database_url)
    try:
        if store.revision() != head_revision():
            raise ConfigError("the database schema is not current: run `python -m sspm migrate`")
        rows, broken = check_chain(store)
    finally:
        store.close()
    if broken is not None:
        print(f"sspm: the audit trail was tampered with: {broken}", file=sys.stderr)
        return 1
    print(f"sspm: audit trail intact: {rows} rows, each one chained to the one before")
    return 0


if __name__ == "__main__":
    sys.exit(main())
