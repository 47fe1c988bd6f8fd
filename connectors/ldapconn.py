"""Connections to an LDAP server, shared by every LDAP-speaking connector.

Service-account connections are kept in a small pool because a new TLS
connection costs far more than the work done on it; a user's bind always
gets a fresh connection that is closed right after, so a user's identity
never lingers on a socket another request could pick up.
"""

from __future__ import annotations

import logging
import queue
import select
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ldap3 import NONE, Connection, Server, Tls, set_config_parameter
from ldap3.core.exceptions import LDAPException

from connectors.directory import DirectoryMisconfigured, DirectoryUnavailable
from connectors.settings import DirectorySettings

log = logging.getLogger(__name__)

# ldap3 otherwise remembers a failed server for a while and refuses to try it
# again: SSPM stayed "unavailable" for ~6 s after the directory came back.
# Process-wide, but this package is the only user of ldap3.
set_config_parameter("RESET_AVAILABILITY_TIMEOUT", 0)


def require_password(password: str) -> None:
    """Refuse an empty password before anything reaches the wire.

    An empty simple bind is an anonymous bind that *succeeds* on many
    servers; the app refuses these earlier, this is the last line.
    """
    if not password or not password.strip():
        raise ValueError("an empty password never reaches the directory")


class Connections:
    """Opens, pools and closes connections for one directory."""

    def __init__(self, settings: DirectorySettings) -> None:
        self._settings = settings
        self._tls = _VerifiedTls(settings.ca_file, settings.host)
        self._idle: queue.LifoQueue[Connection] = queue.LifoQueue()

    def _server(self) -> Server:
        # A Server per connection: ldap3 keeps per-connection state (current
        # address, availability marks) on it, which threads sharing one
        # Server overwrite under each other (seen as spurious "unavailable").
        # get_info=NONE: reading the schema on every connect costs ~15 ms and
        # nothing here needs it.
        return Server(
            self._settings.host,
            port=self._settings.port,
            use_ssl=self._settings.use_ssl,
            tls=self._tls,
            get_info=NONE,
            connect_timeout=self._settings.connect_timeout,
        )

    def open(self, user: str | None, password: str | None) -> Connection:
        """Open a TLS connection, unbound; raise DirectoryUnavailable if we cannot."""
        conn = Connection(
            self._server(),
            user=user,
            password=password,
            receive_timeout=self._settings.timeout,
            raise_exceptions=False,
            auto_referrals=False,
            return_empty_attributes=False,
        )
        try:
            conn.open(read_server_info=False)
            # Without this the first request after the TLS handshake waits
            # on Nagle + delayed ACK: ~40 ms instead of ~2 ms.
            conn.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._settings.starttls and not conn.start_tls(read_server_info=False):
                raise DirectoryUnavailable(f"StartTLS was refused ({conn.result.get('description')})")
        except LDAPException as exc:
            _close(conn)
            raise DirectoryUnavailable(f"cannot reach the directory at {self._settings.url}: {exc}") from None
        return conn

    @contextmanager
    def user(self, dn: str, password: str) -> Iterator[Connection]:
        """A throw-away connection for one user's bind."""
        conn = self.open(dn, password)
        try:
            yield conn
        except LDAPException as exc:
            raise DirectoryUnavailable(f"the directory stopped answering: {type(exc).__name__}") from None
        finally:
            _close(conn)

    @contextmanager
    def service(self) -> Iterator[Connection]:
        """A pooled connection bound as the service account.

        A pooled connection may have died since it was last used (server
        restart, idle timeout); such a connection is dropped, and the caller
        sees DirectoryUnavailable only if a fresh one fails too.
        """
        conn = self._take()
        healthy = False
        try:
            yield conn
            healthy = not conn.closed
        except LDAPException as exc:
            raise DirectoryUnavailable(f"the directory stopped answering: {type(exc).__name__}") from None
        finally:
            if healthy and self._idle.qsize() < self._settings.pool_size:
                self._idle.put(conn)
            else:
                _close(conn)

    def _take(self) -> Connection:
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return self._bind_service()
            if _alive(conn):
                return conn
            _close(conn)

    def _bind_service(self) -> Connection:
        conn = self.open(self._settings.bind_dn, self._settings.bind_password)
        try:
            bound = conn.bind()
        except LDAPException as exc:
            _close(conn)
            raise DirectoryUnavailable(f"the directory stopped answering: {type(exc).__name__}") from None
        if not bound:
            description = conn.result.get("description")
            _close(conn)
            if conn.result.get("result") == 49:
                raise DirectoryMisconfigured(
                    "the directory refused the service account's credentials (LDAP_BIND_DN / LDAP_BIND_PASSWORD)"
                )
            raise DirectoryUnavailable(f"the service account could not bind ({description})")
        return conn

    def close(self) -> None:
        while True:
            try:
                _close(self._idle.get_nowait())
            except queue.Empty:
                return


class _VerifiedTls(Tls):  # type: ignore[misc]
    """ldap3's Tls, with one SSLContext built once and hostname checks by ssl itself.

    Stock ldap3 builds a context (and reads the CA file) on every connection,
    ~0.7 ms each, then checks the name with the deprecated
    ssl.match_hostname. The context here verifies chain and name in the
    handshake, like any modern client.
    """

    def __init__(self, ca_file: Path | None, host: str) -> None:
        super().__init__(ca_certs_file=str(ca_file) if ca_file else None, validate=ssl.CERT_REQUIRED)
        self._host = host
        self._context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self._context.minimum_version = ssl.TLSVersion.TLSv1_2

    def wrap_socket(self, connection: Connection, do_handshake: bool = False) -> None:
        connection.socket = self._context.wrap_socket(
            connection.socket, server_hostname=self._host, do_handshake_on_connect=do_handshake
        )


def _alive(conn: Connection) -> bool:
    """Cheap liveness check: an idle connection has nothing to read.

    Readable means EOF or an unsolicited notice of disconnection; either way
    the server has finished with it.
    """
    if conn.closed or conn.socket is None:
        return False
    try:
        readable, _, _ = select.select([conn.socket], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _close(conn: Connection) -> None:
    try:
        conn.unbind()
    except (LDAPException, OSError):
        log.debug("closing an LDAP connection failed; it is gone anyway")
