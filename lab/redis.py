"""A real redis-server for tests and the demo, on loopback, on a free port."""

from __future__ import annotations

import atexit
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from lab.slapd import free_port


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


def start_redis(workdir: Path, *, port: int | None = None, persist: bool = False) -> RedisServer:
    """Start redis-server in the foreground; the returned object owns it.

    Without ``persist`` nothing is written to disk: tests want a clean
    server, and SSPM keeps nothing in Redis that must survive a flush.
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
    ]
    (workdir / "redis.conf").write_text("\n".join(config) + "\n")
    process = subprocess.Popen(
        ["redis-server", str(workdir / "redis.conf")], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    server = RedisServer(f"redis://127.0.0.1:{port}/0", port, process)
    deadline = time.monotonic() + 10
    while True:
        if process.poll() is not None:
            log = (workdir / "redis.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"redis-server exited ({process.returncode}):\n{log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"redis-server did not answer on port {port}")
        time.sleep(0.02)
