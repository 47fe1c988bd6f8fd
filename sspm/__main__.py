"""Operator commands.

``python -m sspm migrate``: create or upgrade SSPM's database schema.
``python -m sspm check``: prove the configuration, the directory, Redis
and the database all work, before serving anyone.
"""

from __future__ import annotations

import argparse
import sys

from connectors.directory import DirectoryError
from sspm import create_app
from sspm import settings as settings_module
from sspm.settings import ConfigError
from sspm.state import StateUnavailable
from sspm.store import migrate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sspm")
    parser.add_argument("command", choices=["check", "migrate"])
    command = parser.parse_args(argv).command
    try:
        if command == "migrate":
            migrate(settings_module.load().database_url)
            print("sspm: database schema is current")
            return 0
        create_app()
    except (ConfigError, DirectoryError, StateUnavailable) as exc:
        print(f"sspm: cannot start: {exc}", file=sys.stderr)
        return 2
    print("sspm: configuration, directory, Redis and database OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
