"""A real redis-server for tests and the demo, on loopback, on a free port; or a
Sentinel group (a primary, a replica and three sentinels) to fail over."""

from __future__ import annotations

import atexit
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

import redis

from lab.slapd import free_port

#: The Sentinel service name of the lab's group.
SERVICE = "sspm"


@dataclass
class RedisServer:
    url: str
    port: int
    process: subprocess.Popen[bytes]

    def __post_init__(self) -> None:
        atexit.register(self.stop)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        atexit.unregister(self.stop)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def start_redis(
    workdir: Path, *, port: int | None = None, persist: bool = False, extra: Sequence[str] = ()
) -> RedisServer:
    """Start redis-server in the foreground; the returned object owns it.

    Without ``persist`` nothing is written to disk: tests want a clean
    server, and SSPM keeps nothing in Redis that must survive a flush.
    ``extra`` lines go at the end of its configuration (``replicaof ...``).
    """
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    config = [
        f"port {port}",
        "bind 127.0.0.1",
        "protected-mode yes",
        f"dir {workdir}",
        "daemonize no",
        f"logfile {workdir / 'redis.log'}",
        'save ""' if not persist else "save 60 1",
        "appendonly no",
        *extra,
    ]
    (workdir / "redis.conf").write_text("\n".join(config) + "\n")
    return _started("redis-server", workdir, "redis.conf", port)


def _started(program: str, workdir: Path, config: str, port: int) -> RedisServer:
    """Run ``program config`` in ``workdir`` and wait until it answers PING on ``port``."""
    process = subprocess.Popen(
        [program, str(workdir / config)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, cwd=workdir
    )
    server = RedisServer(f"redis://127.0.0.1:{port}/0", port, process)
    deadline = time.monotonic() + 10
    while True:
        if process.poll() is not None:
            log = (workdir / "redis.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{program} exited ({process.returncode}):\n{log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{program} did not answer on port {port}")
        time.sleep(0.02)


# -- a Sentinel group ---------------------------------------------------------------------------


@dataclass
class SentinelCluster:
    """A primary, a replica and three sentinels watching them, on loopback.

    ``url`` is what SSPM_REDIS_URL takes for it. ``kill_primary`` SIGKILLs
    whichever data node the sentinels call the primary now, as a crash
    would; ``wait_for_new_primary`` waits for every sentinel to name another
    one and for that one to answer as a primary.
    """

    nodes: list[RedisServer]
    sentinels: list[RedisServer]
    service: str = SERVICE
    killed: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        where = ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)
        return f"redis+sentinel://{where}/{self.service}/0"

    def primary_port(self) -> int:
        """The port of the primary, as the first sentinel that answers names it."""
        for sentinel in self.sentinels:
            named = self._named_by(sentinel)
            if named is not None:
                return named
        raise RuntimeError("no sentinel answers")

    def kill_primary(self) -> int:
        """SIGKILL the current primary (no shutdown, no save); its port."""
        port = self.primary_port()
        (node,) = [node for node in self.nodes if node.port == port]
        node.process.send_signal(signal.SIGKILL)
        node.process.wait()
        self.killed.append(port)
        return port

    def wait_for_new_primary(self, timeout: float = 60.0) -> int:
        """Wait until every sentinel names a primary that was not killed and it answers as one; its port."""
        deadline = time.monotonic() + timeout
        while True:
            named = {self._named_by(sentinel) for sentinel in self.sentinels if sentinel.process.poll() is None}
            if len(named) == 1:
                (port,) = named
                if port is not None and port not in self.killed and _role(port) == "master":
                    return port
            if time.monotonic() > deadline:
                raise RuntimeError(f"no new primary within {timeout} s; the sentinels name {named}")
            time.sleep(0.1)

    def stop(self) -> None:
        for server in (*self.sentinels, *self.nodes):
            server.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _named_by(self, sentinel: RedisServer) -> int | None:
        answer = _ask(sentinel.port, "SENTINEL", "get-master-addr-by-name", self.service)
        return int(answer[1]) if isinstance(answer, list) and len(answer) == 2 else None


def start_sentinel_cluster(workdir: Path, *, service: str = SERVICE) -> SentinelCluster:
    """A primary, its replica (``replicaof``) and three sentinels (quorum 2), ready to fail over.

    Ready means: the replica is in sync, and each sentinel knows the replica
    and the two other sentinels (found through the primary, which takes a
    sentinel up to ten seconds); a primary killed before that would have no
    one to promote it.
    """
    workdir = workdir.resolve()
    primary = start_redis(workdir / "primary")
    nodes = [primary]
    sentinels: list[RedisServer] = []
    try:
        nodes.append(start_redis(workdir / "replica", extra=[f"replicaof 127.0.0.1 {primary.port}"]))
        for number in range(3):
            home = workdir / f"sentinel-{number}"
            home.mkdir(parents=True, exist_ok=True)
            port = free_port()
            # Sentinel rewrites its own file as it learns: each one writes its own copy.
            (home / "sentinel.conf").write_text(
                "\n".join(
                    [
                        f"port {port}",
                        "bind 127.0.0.1",
                        "daemonize no",
                        f"dir {home}",
                        f"logfile {home / 'redis.log'}",
                        f"sentinel monitor {service} 127.0.0.1 {primary.port} 2",
                        f"sentinel down-after-milliseconds {service} 1000",
                        f"sentinel failover-timeout {service} 5000",
                    ]
                )
                + "\n"
            )
            sentinels.append(_started("redis-sentinel", home, "sentinel.conf", port))
        cluster = SentinelCluster(nodes, sentinels, service)
        deadline = time.monotonic() + 60
        while not _ready(cluster):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Sentinel group in {workdir} did not settle within 60 s")
            time.sleep(0.1)
        return cluster
    except BaseException:
        for server in (*sentinels, *nodes):
            server.stop()
        raise


def _ready(cluster: SentinelCluster) -> bool:
    replica = cluster.nodes[1].port
    if _field(_ask(replica, "INFO", "replication"), "master_link_status") != "up":
        return False
    for sentinel in cluster.sentinels:
        if _field(_ask(sentinel.port, "SENTINEL", "master", cluster.service), "num-other-sentinels") != "2":
            return False
        replicas = _ask(sentinel.port, "SENTINEL", "replicas", cluster.service)
        known = replicas if isinstance(replicas, list) else []
        if not any(_field(one, "port") == str(replica) and _field(one, "flags") == "slave" for one in known):
            return False
    return True


def _field(answer: object, name: str) -> str | None:
    """One field of an answer redis-py parsed into a dict (INFO, SENTINEL MASTER...)."""
    return str(answer[name]) if isinstance(answer, dict) and name in answer else None


def _role(port: int) -> str | None:
    answer = _ask(port, "ROLE")
    return str(answer[0]) if isinstance(answer, list) and answer else None


def _ask(port: int, *command: str) -> object:
    """One command to a server on loopback, answered as text; None if it does not answer."""
    try:
        with redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1, decode_responses=True) as client:
            return client.execute_command(*command)
    except redis.RedisError:
        return None
