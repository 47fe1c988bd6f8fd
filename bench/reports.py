"""How long a console report takes over 100,000 synced accounts (sspm.reports.service).

Fills a fresh SQLite database (migrated as in production) with N rows of
``directory_account`` spread over 20 organizations (some locked, expiring,
expired, not enrolled, not set up) and N/10 audit rows of resets and
unlocks, then times, for a Super Admin (every organization) and a
Helpdesk agent (one organization): the first page, a page deep in the
report (keyset), and a whole CSV export. Median of 5 runs each.

    python -m bench.reports [--accounts 100000] [--database-url URL]

Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from sspm.account.audit import Action
from sspm.infra.store import AuditEvent, DirectoryAccount, Store, migrate
from sspm.policy.roles import Grants, Permission, Reach, reach
from sspm.reports import service
from sspm.reports.service import Kind, Query
from sspm.web.spreadsheet import csv_lines

ORGANIZATIONS = [f"org-{i:02d}" for i in range(20)]
RECOVERIES = [Action.FORGOT_RESET, Action.UNLOCK, Action.RESET_BY_EMAIL, Action.HELPDESK_RESET, Action.HELPDESK_UNLOCK]


def fill(store: Store, accounts: int, now: datetime) -> None:
    batch: list[dict[str, object]] = []
    with store.session() as session:
        for i in range(accounts):
            batch.append(
                {
                    "account_id": f"id-{i:07d}",
                    "login": f"user{i:07d}",
                    "display_name": f"User {i}",
                    "email": f"user{i}@example.org",
                    "organization": ORGANIZATIONS[i % len(ORGANIZATIONS)],
                    "disabled": i % 97 == 0,
                    "locked": i % 50 == 0,
                    "locked_since": now if i % 50 == 0 else None,
                    "failures": 5 if i % 50 == 0 else 0,
                    "password_changed_at": now - timedelta(days=i % 120),
                    "expires_at": now + timedelta(days=90 - i % 120, hours=1),
                    "must_change": False,
                    "enrolled": i % 3 != 0,
                    "set_up": i % 200 != 0,
                    "last_seen_at": now,
                }
            )
            if len(batch) == 5000:
                session.execute(insert(DirectoryAccount), batch)
                batch.clear()
        if batch:
            session.execute(insert(DirectoryAccount), batch)
        # The trail's rows go in directly (not through audit.record's chain): only reading is measured.
        rows = [
            {
                "seq": n + 1,
                "at": now - timedelta(minutes=n),
                "actor_kind": "user",
                "action": RECOVERIES[n % len(RECOVERIES)].value,
                "outcome": "ok",
                "account_id": f"id-{(n * 7) % accounts:07d}",
                "subject": f"user{(n * 7) % accounts:07d}",
                "source_ip": "192.0.2.1",
                "details": {},
                "prev_digest": "",
                "digest": f"{n:064x}",
            }
            for n in range(accounts // 10)
        ]
        for start in range(0, len(rows), 5000):
            session.execute(insert(AuditEvent), rows[start : start + 5000])


def median_ms(run: Callable[[], object], times: int = 5) -> float:
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        run()
        spent.append((time.perf_counter() - started) * 1000)
    return statistics.median(spent)


def deep(store: Store, query: Query, where: Reach, now: datetime, pages: int) -> service.Page:
    found = service.page(store, query, where, now=now)
    for _ in range(pages):
        if found.more is None:
            break
        found = service.page(store, found.more, where, now=now)
    return found


def export(store: Store, query: Query, where: Reach, now: datetime) -> int:
    rows = (service.cells(r) for r in service.every(store, query, where, now=now))
    return sum(1 for _line in csv_lines(service.columns(query.kind), rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'reports.db'}"
        migrate(url)
        store = Store(url)
        now = datetime.now(UTC)
        started = time.perf_counter()
        fill(store, args.accounts, now)
        print(f"{args.accounts} accounts, {args.accounts // 10} trail rows on {url.split(':')[0]}", end="")
        print(f" (filled in {time.perf_counter() - started:.1f} s)")
        viewers = {
            "super-admin": reach(Grants.of([("super-admin", "*")]), Permission.HELPDESK),
            "helpdesk(1 org)": reach(Grants.of([("helpdesk", ORGANIZATIONS[10])]), Permission.HELPDESK),
        }
        print(f"{'report':14} {'viewer':16} {'page 1 ms':>10} {'ms/page (20)':>13} {'export ms':>10} {'rows':>7}")
        for kind in Kind:
            query = Query(kind, days=14 if kind is Kind.EXPIRING else 30)
            for name, where in viewers.items():
                first = median_ms(lambda q=query, w=where: service.page(store, q, w, now=now))
                twentieth = median_ms(lambda q=query, w=where: deep(store, q, w, now, 19), times=3)
                whole = median_ms(lambda q=query, w=where: export(store, q, w, now), times=3)
                count = export(store, query, where, now) - 1
                print(f"{kind.value:14} {name:16} {first:10.1f} {twentieth / 20:13.1f} {whole:10.0f} {count:7}")


if __name__ == "__main__":
    main()
