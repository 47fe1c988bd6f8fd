"""``python -m sspm check``: prove the configuration and the directory work."""

from __future__ import annotations

import argparse
import sys

from connectors.directory import DirectoryError
from sspm import create_app
from sspm.settings import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sspm")
    parser.add_argument("command", choices=["check"], help="check: load settings and reach the directory")
    parser.parse_args(argv)
    try:
        create_app()
    except (ConfigError, DirectoryError) as exc:
        print(f"sspm: cannot start: {exc}", file=sys.stderr)
        return 2
    print("sspm: configuration and directory OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
