"""What the Jobs page shows, read from ``job_runs`` (sspm.infra.jobs) and the schedule.

Runs are kept (and shown) without their arguments, and name no account:
who may see the page sees every run. The page is for spotting a job that
fails or stopped running, so each job gets one line with its last run and
how many of its recent runs failed, above the newest runs of all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select

from sspm.infra.schedule import ENTRIES
from sspm.infra.store import JobRun, Store

#: The newest runs listed under the summary.
LATEST = 50


@dataclass(frozen=True)
class Run:
    name: str
    queue: str
    started_at: datetime
    duration_ms: float
    outcome: str

    @property
    def failed(self) -> bool:
        return self.outcome.startswith("failed")

    @property
    def short_name(self) -> str:
        """The function's own name: the module path is the same few for every job."""
        return self.name.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Job:
    """One job: its last run (None: never ran since the runs kept began), its schedule, its failures kept."""

    name: str
    every_seconds: int | None
    last: Run | None
    runs: int
    failures: int

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Overview:
    jobs: list[Job]
    latest: list[Run]


def _run(row: JobRun) -> Run:
    return Run(row.name, row.queue, row.started_at, row.duration_ms, row.outcome)


def overview(store: Store, latest: int = LATEST) -> Overview:
    """Every job that ran or is scheduled, by name, and the ``latest`` runs, newest first."""
    with store.session() as session:
        failed = func.sum(case((JobRun.outcome.like("failed%"), 1), else_=0))
        counts = {
            name: (runs, int(failures or 0))
            for name, runs, failures in session.execute(select(JobRun.name, func.count(), failed).group_by(JobRun.name))
        }
        newest = select(JobRun.name, func.max(JobRun.id).label("id")).group_by(JobRun.name).subquery()
        lasts = {row.name: _run(row) for row in session.scalars(select(JobRun).join(newest, JobRun.id == newest.c.id))}
        recent = [_run(row) for row in session.scalars(select(JobRun).order_by(JobRun.id.desc()).limit(latest))]
    every = {entry.function: entry.every_seconds for entry in ENTRIES}
    names = sorted(set(counts) | set(every), key=lambda name: name.rsplit(".", 1)[-1])
    jobs = [Job(name, every.get(name), lasts.get(name), *counts.get(name, (0, 0))) for name in names]
    return Overview(jobs, recent)
