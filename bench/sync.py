"""Directory sync: SSPM's full pass beside a raw ldap3 paged search, its memory, and an incremental pass.

    .venv/bin/python -m bench.sync [--n 10000 100000] [--samba-n 200] [--changes 1000] [--page-size 500]
                                   [--database sqlite|postgresql]

For each N a real slapd holds the demo accounts plus N bench accounts. Its
database is made once by slapadd (lab.start_slapd) under
``$XDG_CACHE_HOME/sspm-bench/sync/slapd-<N>`` and reused by later runs. In
the same run, each in a fresh process of its own (so ``ru_maxrss`` is
that run's alone):

* RAW: an ldap3 paged search of the same filter and attributes as the
  connector, over the same verified LDAPS, entries counted and dropped;
* SSPM: ``sspm.account.sync.sync_all`` into SSPM's store (SQLite, or with
  ``--database postgresql`` a PostgreSQL cluster started by lab.postgres on
  loopback, a fresh database per N), first empty
  (every row inserted, reported apart), then RAW and SSPM alternate three
  times each with every row updated (the steady state of a nightly pass):
  the ratio is SSPM's best over RAW's best (and of the medians).
* incremental: one ``sync_changes`` to take a checkpoint, then
  ``--changes`` accounts get a new telephoneNumber (not timed), then
  ``sync_changes`` again, timed, which must see exactly those.
* reports: the first page of each account report (sspm.reports.service)
  over the synced table, for a Super Admin: median of 5, in ms.

Each run also gives the CPU time of its own process (ldap3 in both; SSPM's
mapping and writes besides): on a shared machine the wall-clock ratio moves
with the load, the CPU ratio much less. Each run's wall time is printed too,
for the spread.

Memory is the process's peak RSS (VmHWM, the process's own: ``ru_maxrss``
starts at the parent's at fork) and what it grew by during the sync (peak
minus the peak before it started). Samba runs the
same with ``--samba-n`` accounts (provisioned once, cached as the tests'
domain is; a Samba DC adds a few accounts a second, so N stays small).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ldap3

from connectors import open_directory
from connectors.directory import AccountDetails
from connectors.settings import DirectorySettings
from lab import DEMO_ACCOUNTS, bench_accounts, samba, start_slapd
from lab.postgres import PostgresServer, start_postgres
from lab.seed import ORGANIZATION_ATTRIBUTES
from lab.seed import PEOPLE_DN as OPENLDAP_PEOPLE_DN
from lab.slapd import USER_FILTER as OPENLDAP_USER_FILTER

ROOT = Path(__file__).resolve().parents[1]
#: RAW and SSPM runs, alternated, per N (the best of each is compared).
REPEATS = 3


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sspm-bench" / "sync"


# -- the child: one measured run per process ---------------------------------------------------


def child(mode: str, kind: str, described: str, database_url: str, page_size: int) -> dict[str, Any]:
    from sspm.account.sync import sync_all, sync_changes
    from sspm.infra.store import Store
    from sspm.policy.organizations import OrganizationSource, organization_of

    fields = json.loads(described)
    fields["ca_file"] = Path(fields["ca_file"]) if fields["ca_file"] else None
    settings = DirectorySettings(**fields)
    directory = open_directory(kind, settings)
    store = Store(database_url)
    source = OrganizationSource.parse(f"attribute:{settings.organization_attribute}")

    def organization(found: AccountDetails) -> str | None:
        return organization_of(found, source, settings.base_dn)

    before = peak_rss_kib()
    started, cpu = time.perf_counter(), time.process_time()
    if mode == "raw":
        # The connector's own filter and attribute list: the same search, without SSPM around it.
        seen = raw_read(settings, directory._every_account, directory._detail_attributes, page_size)  # type: ignore[attr-defined]
        result: dict[str, Any] = {"seen": seen}
    else:
        run = sync_all if mode == "full" else sync_changes
        done = run(store, directory, organization, page_size=page_size)
        result = {"seen": done.seen, "batches": done.batches, "largest_batch": done.largest_batch, "gone": done.gone}
    result["seconds"] = time.perf_counter() - started
    result["cpu_seconds"] = time.process_time() - cpu
    peak = peak_rss_kib()
    result |= {"peak_mib": peak / 1024, "grew_mib": (peak - before) / 1024}
    directory.close()
    store.close()
    return result


def peak_rss_kib() -> int:
    """This process's peak resident set (VmHWM): its own, where ru_maxrss starts at the parent's at fork."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def raw_read(settings: DirectorySettings, query: str, attributes: list[str], page_size: int) -> int:
    """What a minimal client does: bind, paged subtree search, count."""
    tls = ldap3.Tls(ca_certs_file=str(settings.ca_file), validate=2)  # ssl.CERT_REQUIRED
    server = ldap3.Server(settings.host, port=settings.port, use_ssl=True, tls=tls, get_info=ldap3.NONE)
    conn = ldap3.Connection(server, user=settings.bind_dn, password=settings.bind_password)
    assert conn.bind(), conn.result
    seen, cookie = 0, None
    while True:
        conn.search(
            settings.base_dn, query, ldap3.SUBTREE, attributes=attributes, paged_size=page_size, paged_cookie=cookie
        )
        seen += sum(1 for entry in conn.response or [] if entry.get("type") == "searchResEntry")
        cookie = conn.result["controls"]["1.2.840.113556.1.4.319"]["value"]["cookie"]
        if not cookie:
            break
    conn.unbind()
    return seen


def measure(mode: str, kind: str, settings: DirectorySettings, database_url: str, page_size: int) -> dict[str, Any]:
    described = json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(settings).items()})
    done = subprocess.run(
        [sys.executable, "-m", "bench.sync", "--child", mode, kind, described, database_url, str(page_size)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    if done.returncode != 0:
        raise RuntimeError(f"{mode} run failed:\n{done.stderr}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


# -- the directories -------------------------------------------------------------------------------


def openldap_settings(slapd: Any) -> DirectorySettings:
    return DirectorySettings(
        url=slapd.ldaps_url,
        bind_dn=slapd.service_dn,
        bind_password=slapd.service_password,
        base_dn=OPENLDAP_PEOPLE_DN,
        user_filter=OPENLDAP_USER_FILTER,
        policy_dn=slapd.policy_dn,
        ca_file=slapd.ca_file,
        organization_attribute=ORGANIZATION_ATTRIBUTES["openldap"],
        timeout=60,
    )


def ad_settings(dc: samba.SambaDC) -> DirectorySettings:
    return DirectorySettings(
        url=dc.ldaps_url,
        bind_dn=dc.service_dn,
        bind_password=dc.service_password,
        base_dn=dc.people_dn,
        user_filter=samba.USER_FILTER,
        ca_file=dc.ca_file,
        organization_attribute=ORGANIZATION_ATTRIBUTES["ad"],
        timeout=60,
    )


def change_phones(settings: DirectorySettings, admin_dn: str, admin_password: str, dns: Sequence[str]) -> None:
    """``len(dns)`` accounts changed as an administrator changes them: a new telephoneNumber each."""
    tls = ldap3.Tls(ca_certs_file=str(settings.ca_file), validate=2)
    server = ldap3.Server(settings.host, port=settings.port, use_ssl=True, tls=tls, get_info=ldap3.NONE)
    conn = ldap3.Connection(server, user=admin_dn, password=admin_password)
    assert conn.bind(), conn.result
    stamp = int(time.time()) % 10_000
    for number, dn in enumerate(dns):
        phone = f"+1 514 {stamp:04d} {number:05d}"
        assert conn.modify(dn, {"telephoneNumber": [(ldap3.MODIFY_REPLACE, [phone])]}), conn.result
    conn.unbind()


def bench_one(
    kind: str,
    n: int,
    settings: DirectorySettings,
    changed_dns: Sequence[str],
    admin: tuple[str, str],
    page_size: int,
    database: Database,
) -> dict[str, Any]:
    from sspm.infra.store import migrate

    with database.fresh(f"{kind}-{n}") as database_url:
        migrate(database_url)
        # SSPM's first pass inserts every row; then RAW and SSPM alternate (every row updated: the
        # nightly steady state), REPEATS times each, so a burst of load on the machine hits both.
        runs: dict[str, Any] = {"sspm_first": measure("full", kind, settings, database_url, page_size)}
        for repeat in range(REPEATS):
            runs[f"raw_{repeat}"] = measure("raw", kind, settings, database_url, page_size)
            runs[f"sspm_{repeat}"] = measure("full", kind, settings, database_url, page_size)
        runs["checkpoint"] = measure("changes", kind, settings, database_url, page_size)
        change_phones(settings, *admin, changed_dns)
        runs["incremental"] = measure("changes", kind, settings, database_url, page_size)
        reports = report_ms(database_url)
    expected = n + len(DEMO_ACCOUNTS)
    raws = [runs[f"raw_{repeat}"] for repeat in range(REPEATS)]
    sspms = [runs[f"sspm_{repeat}"] for repeat in range(REPEATS)]
    for run in [runs["sspm_first"], *raws, *sspms]:
        assert run["seen"] == expected, (run, expected)
    assert runs["incremental"]["seen"] == len(changed_dns), runs["incremental"]
    raw = min(run["seconds"] for run in raws)
    sspm = min(run["seconds"] for run in sspms)
    return {
        "kind": kind,
        "database": database.kind,
        "n": n,
        "raw_s": round(raw, 2),
        "sspm_s": round(sspm, 2),
        "ratio": round(sspm / raw, 2),
        "ratio_median": round(
            statistics.median(s["seconds"] for s in sspms) / statistics.median(r["seconds"] for r in raws), 2
        ),
        "raw_runs_s": [round(run["seconds"], 2) for run in raws],
        "sspm_runs_s": [round(run["seconds"], 2) for run in sspms],
        # CPU of the measuring process alone (ldap3 for both; SSPM's mapping and writes): steadier under load.
        "cpu_ratio_median": round(
            statistics.median(s["cpu_seconds"] for s in sspms) / statistics.median(r["cpu_seconds"] for r in raws), 2
        ),
        "sspm_first_s": round(runs["sspm_first"]["seconds"], 2),
        "sspm_peak_mib": round(max(run["peak_mib"] for run in sspms), 1),
        "sspm_grew_mib": round(max(run["grew_mib"] for run in sspms), 1),
        "raw_peak_mib": round(max(run["peak_mib"] for run in raws), 1),
        "largest_batch": max(run["largest_batch"] for run in sspms),
        "changes": len(changed_dns),
        "incremental_s": round(runs["incremental"]["seconds"], 3),
        "report_first_page_ms": reports,
    }


def report_ms(database_url: str) -> dict[str, float]:
    """Each account report's first page over the synced table, for a Super Admin (every row): median of 5, in ms."""
    from bench.reports import median_ms
    from sspm.infra.store import Store
    from sspm.policy.roles import Grants, Permission, reach
    from sspm.reports import service
    from sspm.reports.service import Kind, Query

    store = Store(database_url)
    everyone = reach(Grants.of([("super-admin", "*")]), Permission.HELPDESK)
    now = datetime.now(UTC)

    def first_page(kind: Kind) -> Callable[[], object]:
        return lambda: service.page(store, Query(kind), everyone, now=now)

    try:
        # Not the resets-and-unlocks report: it reads the audit trail, which the sync does not write.
        return {kind.value: round(median_ms(first_page(kind)), 1) for kind in Kind if kind is not Kind.RECOVERIES}
    finally:
        store.close()


@dataclasses.dataclass
class Database:
    """Where SSPM's store is: a SQLite file per N, or a database per N on one PostgreSQL started for the bench."""

    kind: str
    postgres: PostgresServer | None = None

    @contextmanager
    def fresh(self, name: str) -> Iterator[str]:
        if self.postgres is None:
            with tempfile.TemporaryDirectory(prefix="sspm-bench-sync-") as scratch:
                yield f"sqlite:///{scratch}/sspm.db"
            return
        database = f"bench_sync_{name}".replace("-", "_")
        self.postgres.drop_database(database)
        url = self.postgres.create_database(database)
        try:
            yield url
        finally:
            self.postgres.drop_database(database)


def bench_openldap(n: int, changes: int, page_size: int, database: Database) -> dict[str, Any]:
    workdir = cache_root() / f"slapd-{n}"
    made = not (workdir / "data" / "data.mdb").exists()
    started = time.perf_counter()
    accounts = [*DEMO_ACCOUNTS, *bench_accounts(n)] if made else list(DEMO_ACCOUNTS)
    with start_slapd(workdir, accounts, reuse=True) as slapd:
        if made:
            print(
                f"slapd with {n} bench accounts made in {time.perf_counter() - started:.0f} s ({workdir})", flush=True
            )
        dns = [account.dn for account in bench_accounts(min(changes, n))]
        admin = (slapd.root_dn, slapd.root_password)
        return bench_one("openldap", n, openldap_settings(slapd), dns, admin, page_size, database)


def bench_samba(n: int, changes: int, page_size: int, database: Database) -> dict[str, Any]:
    accounts = [*DEMO_ACCOUNTS, *bench_accounts(n)]
    with tempfile.TemporaryDirectory(prefix="sspm-bench-samba-") as scratch:
        snapshot = samba.make_snapshot(Path(scratch) / "snapshot", cache=samba.default_cache(), accounts=accounts)
        dc = samba.start_samba(Path(scratch) / "samba", snapshot, max_runtime=1800)
        try:
            dns = [samba.person_dn(account) for account in bench_accounts(min(changes, n))]
            return bench_one("ad", n, ad_settings(dc), dns, (dc.admin_dn, dc.admin_password), page_size, database)
        finally:
            dc.stop()


def main(argv: Sequence[str] | None = None) -> None:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        mode, kind, described, database_url, page_size = sys.argv[2:7]
        print(json.dumps(child(mode, kind, described, database_url, int(page_size))))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="*", default=[10_000, 100_000], help="bench accounts in slapd")
    parser.add_argument("--samba-n", type=int, default=200, help="bench accounts in Samba (0: no Samba run)")
    parser.add_argument("--changes", type=int, default=1000, help="accounts changed before the incremental sync")
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument(
        "--database", choices=["sqlite", "postgresql"], default="sqlite", help="SSPM's store (PostgreSQL: lab.postgres)"
    )
    args = parser.parse_args(argv)
    print(f"load average at start: {os.getloadavg()}, {os.cpu_count()} CPUs", flush=True)
    with ExitStack() as stack:
        database = Database("sqlite")
        if args.database == "postgresql":
            database = Database("postgresql", stack.enter_context(start_postgres()))
        results = [bench_openldap(n, args.changes, args.page_size, database) for n in args.n]
        if args.samba_n:
            results.append(bench_samba(args.samba_n, min(args.changes, args.samba_n), args.page_size, database))
    for row in results:
        print(json.dumps(row), flush=True)
    print(f"load average at end: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
