"""Is a worker, or the scheduler, alive? What ``python -m sspm health worker|scheduler`` answers.

Both already say so in Redis, where an orchestrator can look without
talking to the process: RQ keeps each worker's registration (host, pid,
queues, last heartbeat; the key expires ``worker_ttl`` + 60 s after the last
one), and the scheduler sets ``schedule.HEARTBEAT_PREFIX + name`` at every
tick, expiring after three ticks (30 s at least). A process that was killed
leaves its record behind until it expires, so on its own host its pid is
asked too: a dead worker reads dead at once, not minutes later.

By default only this host's processes count (a systemd unit or a container
asks about its own); ``anywhere`` asks whether the cluster has one at all.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from redis import Redis
from rq import Worker

from sspm.infra import schedule


@dataclass(frozen=True)
class Verdict:
    alive: bool
    #: One plain line for the operator (no address, no secret: host names, queue names, ages).
    line: str


def scheduler_name() -> str:
    """A scheduler's name: ``host:pid:random``, so a check on its host can ask whether the pid lives."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True


def workers(connection: Redis, queues: tuple[str, ...], *, anywhere: bool = False) -> Verdict:
    """Alive when at least one registered worker serves every queue in ``queues`` (any, if empty)."""
    host = socket.gethostname()
    now = datetime.now(UTC)
    wanted = set(queues)
    ages = []
    for worker in Worker.all(connection=connection):
        if not wanted <= set(worker.queue_names()) or worker.last_heartbeat is None:
            continue
        if not anywhere and worker.hostname != host:
            continue
        if worker.hostname == host and worker.pid and not _pid_alive(worker.pid):
            continue  # killed: its record outlives it until the key expires
        ages.append((now - worker.last_heartbeat.replace(tzinfo=UTC)).total_seconds())
    where = "anywhere" if anywhere else f"on {host}"
    serving = ", ".join(sorted(wanted)) or "any queue"
    if not ages:
        return Verdict(False, f"sspm: no live worker {where} serving {serving}")
    return Verdict(True, f"sspm: {len(ages)} worker(s) {where} serving {serving}, last heartbeat {min(ages):.0f} s ago")


def schedulers(connection: Redis, *, anywhere: bool = False) -> Verdict:
    """Alive when a scheduler has ticked within its heartbeat's lifetime (and, on this host, still runs)."""
    host = socket.gethostname()
    live = 0
    for key in connection.scan_iter(f"{schedule.HEARTBEAT_PREFIX}*"):
        name = (key.decode() if isinstance(key, bytes) else str(key))[len(schedule.HEARTBEAT_PREFIX) :]
        its_host, _, rest = name.partition(":")
        pid = rest.partition(":")[0]
        if not anywhere and its_host != host:
            continue
        if its_host == host and pid.isdigit() and not _pid_alive(int(pid)):
            continue
        live += 1
    where = "anywhere" if anywhere else f"on {host}"
    if not live:
        return Verdict(False, f"sspm: no scheduler ticking {where}")
    return Verdict(True, f"sspm: {live} scheduler(s) ticking {where}")
