"""Connections to an LDAP server, shared by every LDAP-speaking connector.

Service-account connections are kept in a small pool because a new TLS
connection costs far more than the work done on it; a user's bind always
gets a fresh connection that is closed right after, so a user's identity
never lingers on a socket another request could pick up.

Every wait here has the bound the settings give it, and no other:
opening a connection (TCP connect and TLS handshake together) at most
``connect_timeout``; each operation, from its request to the last byte of
its answer, at most ``timeout`` (ldap3's own timeout is per read, so an
answer arriving in pieces could take any time); waiting for one of the
process's directory slots at most ``queue_timeout`` (connectors/guard.py).

With several servers (LDAP_URL's list, :class:`Servers`), opening tries
them in turn, each within ``connect_timeout``, skipping those marked down;
so only when every server fails does one call wait more than one
``connect_timeout``, and that is the breaker's case.

How a password goes on the wire is here too: ldap3 would run every ``str``
password through SASLprep (RFC 4013) and raise on the ones it refuses (a
control character, right-to-left letters beside Latin ones), which read as
"directory unavailable". Passwords are therefore handed to ldap3 as bytes,
in the form each kind of directory compares (see :func:`as_typed` and
:func:`prepared`).
"""

from __future__ import annotations

import logging
import queue
import select
import socket
import ssl
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ldap3 import ANONYMOUS, NONE, SIMPLE, SUBTREE, Connection, Server, Tls, set_config_parameter
from ldap3.core.exceptions import LDAPException, LDAPResponseTimeoutError, LDAPSASLPrepError
from ldap3.protocol.sasl.sasl import sasl_prep

from connectors.directory import DirectoryMisconfigured, DirectoryUnavailable
from connectors.guard import Guard, NoAnswer
from connectors.settings import DirectorySettings, Endpoint

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

log = logging.getLogger(__name__)

# ldap3 otherwise remembers a failed server for a while and refuses to try it
# again: SSPM stayed "unavailable" for ~6 s after the directory came back.
# Process-wide, but this package is the only user of ldap3.
set_config_parameter("RESET_AVAILABILITY_TIMEOUT", 0)

#: The simple paged results control (RFC 2696).
PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"

# LDAP result codes that say the directory refused an account, rather than failed.
_REFUSED_FOR_RIGHTS = (32, 50, 123)  # noSuchObject, insufficientAccessRights, authorizationDenied


def raise_for(result: dict[str, object], doing: str, who: str = "the service account") -> None:
    """Nothing on success; otherwise the error an operator (or a retry) can act on."""
    code = result.get("result")
    if code == 0:
        return
    description = result.get("description")
    if code in _REFUSED_FOR_RIGHTS:
        raise DirectoryMisconfigured(f"{who} may not {doing} ({description})")
    raise DirectoryUnavailable(f"the directory could not {doing} ({description})")


def require_password(password: str) -> None:
    """Refuse an empty password before anything reaches the wire.

    An empty simple bind is an anonymous bind that *succeeds* on many
    servers; the app refuses these earlier, this is the last line.
    """
    if not password or not password.strip():
        raise ValueError("an empty password never reaches the directory")


def as_typed(password: str) -> bytes:
    """The password's UTF-8 bytes, exactly as typed.

    What Active Directory compares: Windows never applies SASLprep, and a
    password set through ``unicodePwd`` is stored as typed, so a bind must
    send it as typed too. A string with no UTF-8 form (a lone surrogate,
    which no browser sends) raises UnicodeEncodeError, a ValueError: it
    never reaches the directory.
    """
    return password.encode("utf-8")


def prepared(password: str) -> bytes:
    """SASLprep's form of the password where SASLprep has one, else the password as typed.

    What OpenLDAP compares for passwords set through SSPM: slapd stores and
    compares the bytes it is sent, and SSPM has always sent SASLprep's form
    (ldap3's default), so a password with, say, a no-break space keeps
    matching what was stored. Where SASLprep refuses (a control character,
    right-to-left letters beside Latin ones: ``Lantern-שלום-Orbit-2024``),
    slapd still stores and checks the bytes as typed, so that is what is sent.
    """
    if password.isascii():
        # SASLprep leaves printable ASCII as it is and refuses ASCII control
        # characters, where the bytes as typed are sent anyway: either way,
        # as typed. Most passwords take this path, which skips ldap3's
        # character-by-character SASLprep (about 0.2 ms of CPU per password).
        return as_typed(password)
    try:
        return str(sasl_prep(password)).encode("utf-8")
    except LDAPSASLPrepError:
        return as_typed(password)


def unusable_characters(password: str) -> bool:
    """Whether a new password holds a character no directory should be given.

    Control characters (NUL, tab, the C0 and C1 ranges, DEL) and lone
    surrogates. Samba stores a password with a NUL but nothing can bind
    with it afterwards (tried on the lab DC: neither the whole password nor
    the part before the NUL); slapd stores and checks any of them, but no
    sign-in prompt lets a user type them and C clients (libldap, PAM) end a
    password at a NUL. Either way the user would be locked out everywhere
    but here, so both kinds refuse them the same way. Right-to-left letters
    beside Latin ones, private-use and other printable characters are
    stored and checked by both directories, and accepted.
    """
    return any(unicodedata.category(char) in ("Cc", "Cs") for char in password)


class Servers:
    """Which of a directory's servers (LDAP_URL's list, preferred first) connections go to.

    The first server not marked down. A server that could not be reached
    (refused, reset, no TLS handshake in time) or stopped answering is
    marked down for ``prefer_after`` seconds: connections skip it without
    trying, so a dead server costs one failed attempt per period, not a
    connect timeout per request. When its mark ends, the next connection
    tries it again, which is how service goes back to the preferred server
    once it answers. With every server marked down each is tried anyway, in
    order: a lone server (one URL) is never skipped, exactly as before lists.

    Read-after-write: inside :meth:`pinned`, a thread keeps the server its
    first connection went to, so a write and the read that checks it are
    answered by the same server even if a return to the preferred one
    happens between them. Shared by every :class:`Connections` of one
    directory (service and provisioning accounts).
    """

    def __init__(self, settings: DirectorySettings) -> None:
        self.endpoints: tuple[Endpoint, ...] = settings.endpoints
        self._prefer_after = settings.prefer_after
        # One TLS context per server: each is checked against its own host name.
        self.tls = tuple(_VerifiedTls(settings.ca_file, end.host, settings.timeout) for end in self.endpoints)
        self._lock = threading.Lock()
        #: Until when (time.monotonic()) each server is skipped; 0: not marked.
        self._down_until = [0.0] * len(self.endpoints)
        self._local = threading.local()

    def order(self) -> list[int]:
        """The servers to try for a new connection, by index: the pinned one while up, then those up, then the rest."""
        now = time.monotonic()
        with self._lock:
            up = [i for i, until in enumerate(self._down_until) if until <= now]
        order = up + [i for i in range(len(self.endpoints)) if i not in up]
        pinned = getattr(self._local, "server", None)
        if pinned is not None and pinned in up:
            order.remove(pinned)
            order.insert(0, pinned)
        return order

    def current(self) -> int:
        """The server a new connection would go to first: pooled connections elsewhere are dropped."""
        return self.order()[0]

    def failed(self, server: int, why: object) -> None:
        """Skip ``server`` for ``prefer_after`` seconds (when another is up, connections go there)."""
        if len(self.endpoints) == 1:
            return
        with self._lock:
            was_up = self._down_until[server] <= time.monotonic()
            self._down_until[server] = time.monotonic() + self._prefer_after
        if was_up:
            log.warning(
                "directory server %s failed (%s): skipped for %g s (LDAP_PREFER_AFTER)",
                self.endpoints[server].url,
                why,
                self._prefer_after,
            )

    def answered(self, server: int) -> None:
        with self._lock:
            was_down = self._down_until[server] > 0
            self._down_until[server] = 0.0
        if was_down and len(self.endpoints) > 1:
            log.warning("directory server %s answers again", self.endpoints[server].url)

    def others_up(self, server: int) -> bool:
        """Whether a server other than ``server`` is not marked down."""
        now = time.monotonic()
        with self._lock:
            return any(until <= now for i, until in enumerate(self._down_until) if i != server)

    def used(self, server: int) -> None:
        """Inside :meth:`pinned`, the first server used becomes this thread's for the rest of it."""
        if getattr(self._local, "depth", 0) and getattr(self._local, "server", None) is None:
            self._local.server = server

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """Every connection this thread takes in here goes to one server, while it answers."""
        depth = getattr(self._local, "depth", 0)
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if not depth:
                self._local.server = None


class Connections:
    """Opens, pools and closes connections for one directory, bound as one account.

    ``encode`` puts a password on the wire in the form this kind of
    directory compares (:func:`as_typed` or :func:`prepared`); the bound
    account's password goes through it too. That account is the service
    account, unless ``account`` names another (the provisioning account,
    with the names of its settings for error messages); pass the service
    account's ``guard`` and ``servers`` then, so both count against one
    bulkhead and follow one choice of server.

    Every connection remembers its server (``sspm_server``, an index into
    ``servers.endpoints``); a pooled one is handed out only while that is
    still the server to use, so after a failover or a return to the
    preferred server the pools empty themselves of the old one's connections.
    """

    def __init__(
        self,
        settings: DirectorySettings,
        encode: Callable[[str], bytes],
        *,
        account: tuple[str, str] | None = None,
        setting_names: str = "LDAP_BIND_DN / LDAP_BIND_PASSWORD",
        guard: Guard | None = None,
        servers: Servers | None = None,
    ) -> None:
        self._settings = settings
        self._encode = encode
        self._bind_dn, self._bind_password = account or (settings.bind_dn, settings.bind_password)
        self._setting_names = setting_names
        self.servers = servers or Servers(settings)
        self._idle: queue.LifoQueue[Connection] = queue.LifoQueue()
        #: Open connections for user binds, each anonymous while it waits here.
        self._users: queue.LifoQueue[Connection] = queue.LifoQueue()
        self.guard = guard or Guard(
            max_calls=settings.max_calls,
            queue_timeout=settings.queue_timeout,
            retry_after=settings.retry_after,
        )

    def _server(self, index: int) -> Server:
        # A Server per connection: ldap3 keeps per-connection state (current
        # address, availability marks) on it, which threads sharing one
        # Server overwrite under each other (seen as spurious "unavailable").
        # get_info=NONE: reading the schema on every connect costs ~15 ms and
        # nothing here needs it. ldap3's ServerPool is not used: its
        # round-robin and "first" strategies keep no down marks across
        # connections and know nothing of the pools here.
        endpoint = self.servers.endpoints[index]
        return Server(
            endpoint.host,
            port=endpoint.port,
            use_ssl=endpoint.use_ssl,
            tls=self.servers.tls[index],
            get_info=NONE,
            connect_timeout=self._settings.connect_timeout,
        )

    def open(self, user: str | None, password: bytes | None) -> Connection:
        """Open a TLS connection, unbound, to the first server that takes it; raise DirectoryUnavailable if none does.

        Each server tried gets ``connect_timeout``; one that fails is marked
        down (see :class:`Servers`). NoAnswer, which opens the breaker, only
        when no server could be reached and one of them did not answer in time.
        """
        failures: list[DirectoryUnavailable] = []
        for index in self.servers.order():
            try:
                conn = self._open_at(index, user, password)
            except DirectoryUnavailable as failure:
                self.servers.failed(index, failure)
                failures.append(failure)
                continue
            self.servers.answered(index)
            self.servers.used(index)
            return conn
        if len(failures) == 1:
            raise failures[0]
        message = "no directory server could be reached: " + "; ".join(str(f) for f in failures)
        raise NoAnswer(message) if any(isinstance(f, NoAnswer) for f in failures) else DirectoryUnavailable(message)

    def _open_at(self, index: int, user: str | None, password: bytes | None) -> Connection:
        conn = Connection(
            self._server(index),
            user=user,
            password=password,
            receive_timeout=self._settings.timeout,
            raise_exceptions=False,
            auto_referrals=False,
            return_empty_attributes=False,
        )
        conn.sspm_server = index
        # TCP connect and TLS handshake share this one deadline (see _VerifiedTls.wrap_socket).
        conn.sspm_open_deadline = time.monotonic() + self._settings.connect_timeout
        url = self.servers.endpoints[index].url
        try:
            conn.open(read_server_info=False)
            # Without this the first request after the TLS handshake waits
            # on Nagle + delayed ACK: ~40 ms instead of ~2 ms.
            conn.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._settings.starttls and not conn.start_tls(read_server_info=False):
                raise DirectoryUnavailable(f"StartTLS was refused by {url} ({conn.result.get('description')})")
        except LDAPException as exc:
            _close(conn)
            raise _failure(exc, f"cannot reach the directory at {url}: {exc}") from None
        return conn

    def _lost(self, conn: Connection, exc: LDAPException) -> DirectoryUnavailable:
        """The error for a connection that failed in use; its server is marked down.

        A timeout there is NoAnswer (which opens the breaker) only when no
        other server is up: otherwise the next call simply goes to another.
        """
        server: int = conn.sspm_server
        failure = _failure(exc, f"the directory stopped answering: {type(exc).__name__}")
        self.servers.failed(server, failure)
        if isinstance(failure, NoAnswer) and self.servers.others_up(server):
            return DirectoryUnavailable(str(failure))
        return failure

    def _current(self, conn: Connection) -> bool:
        """Whether a pooled connection is alive and on the server connections go to now."""
        if conn.sspm_server != self.servers.current() or not _alive(conn):
            return False
        self.servers.used(conn.sspm_server)
        return True

    @contextmanager
    def user(self, dn: str, password: str) -> Iterator[Connection]:
        """A connection on which the caller binds as one user, as one directory call (see connectors/guard.py).

        The TLS connection is reused: a new LDAPS connection per change cost
        more client CPU than the rest of the directory work together (issue
        11). Identity is what must never be reused, so before a connection
        goes back to the pool it binds anonymously, which ends the user's
        identity on it (RFC 4511 4.2.1); if that bind fails, or anything went
        wrong on it, the connection is closed instead. The caller sees an
        unbound connection with ``dn`` and the password set for its ``bind()``.
        """
        wire = self._encode(password)
        with self.guard.call():
            conn = self._take_user()
            conn.authentication = SIMPLE
            conn.user, conn.password = dn, wire
            reusable = False
            try:
                yield conn
                reusable = not conn.closed
            except LDAPException as exc:
                raise self._lost(conn, exc) from None
            finally:
                if reusable and self._users.qsize() < self._settings.pool_size and _forget_identity(conn):
                    self._users.put(conn)
                else:
                    _close(conn)

    def _take_user(self) -> Connection:
        while True:
            try:
                conn = self._users.get_nowait()
            except queue.Empty:
                return self.open(None, None)
            if self._current(conn):
                return conn
            _close(conn)

    @contextmanager
    def service(self) -> Iterator[Connection]:
        """A pooled connection bound as the service account.

        A pooled connection may have died since it was last used (server
        restart, idle timeout); such a connection is dropped, and the caller
        sees DirectoryUnavailable only if a fresh one fails too. Taking one,
        and all the work done on it, is one directory call (connectors/guard.py).
        """
        with self.guard.call():
            conn = self._take()
            healthy = False
            try:
                yield conn
                healthy = not conn.closed
            except LDAPException as exc:
                raise self._lost(conn, exc) from None
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
            if self._current(conn):
                return conn
            _close(conn)

    def pages(self, base: str, query: str, attributes: list[str], page_size: int) -> Iterator[list[dict[str, Any]]]:
        """A subtree search's entries, one page at a time, on a connection of its own.

        For reading a whole directory: one page in memory at a time, and the
        paged-results cookie (valid on its connection only) kept on one
        connection opened for this and closed at the end, or when the caller
        stops early. Each page is one directory call, bounded as any other,
        and no call is held while the caller works on a page.
        """
        with self.guard.call():
            conn = self._bind_service()
        try:
            cookie: bytes | None = None
            while True:
                with self.guard.call():
                    try:
                        conn.search(
                            base,
                            query,
                            SUBTREE,
                            attributes=attributes,
                            paged_size=page_size,
                            paged_cookie=cookie,
                        )
                    except LDAPException as exc:
                        raise self._lost(conn, exc) from None
                    result = conn.result
                    entries = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
                raise_for(result, "read the accounts")
                control = (result.get("controls") or {}).get(PAGED_RESULTS_OID) or {}
                cookie = (control.get("value") or {}).get("cookie") or None
                yield entries
                if not cookie:
                    return
        finally:
            _close(conn)

    def _bind_service(self) -> Connection:
        conn = self.open(self._bind_dn, self._encode(self._bind_password))
        try:
            bound = conn.bind()
        except LDAPException as exc:
            _close(conn)
            raise self._lost(conn, exc) from None
        if not bound:
            description = conn.result.get("description")
            _close(conn)
            if conn.result.get("result") == 49:
                raise DirectoryMisconfigured(f"the directory refused the credentials of {self._setting_names}")
            raise DirectoryUnavailable(f"{self._bind_dn} could not bind ({description})")
        return conn

    def close(self) -> None:
        for idle in (self._idle, self._users):
            while True:
                try:
                    _close(idle.get_nowait())
                except queue.Empty:
                    break


class _VerifiedTls(Tls):  # type: ignore[misc]
    """ldap3's Tls, with one SSLContext built once and hostname checks by ssl itself.

    Stock ldap3 builds a context (and reads the CA file) on every connection,
    ~0.7 ms each, then checks the name with the deprecated
    ssl.match_hostname. The context here verifies chain and name in the
    handshake, like any modern client. Its sockets keep one deadline per
    operation (:class:`_DeadlineSocket`), and the handshake gets what is left
    of the connection's opening deadline, not a timeout of its own.
    """

    def __init__(self, ca_file: Path | None, host: str, operation_timeout: float) -> None:
        super().__init__(ca_certs_file=str(ca_file) if ca_file else None, validate=ssl.CERT_REQUIRED)
        self._host = host
        self._operation_timeout = operation_timeout
        self._context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self._context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._context.sslsocket_class = _DeadlineSocket

    def wrap_socket(self, connection: Connection, do_handshake: bool = False) -> None:
        wrapped = cast(
            _DeadlineSocket,
            self._context.wrap_socket(connection.socket, server_hostname=self._host, do_handshake_on_connect=False),
        )
        connection.socket = wrapped  # from now on, closing the connection closes this socket
        if do_handshake:
            deadline = getattr(connection, "sspm_open_deadline", None)
            left = deadline - time.monotonic() if deadline is not None else self._operation_timeout
            if left <= 0:
                raise TimeoutError("no TLS handshake within LDAP_CONNECT_TIMEOUT")
            wrapped.settimeout(left)
            wrapped.do_handshake()
        wrapped.settimeout(self._operation_timeout)
        wrapped.operation_timeout = self._operation_timeout


class _DeadlineSocket(ssl.SSLSocket):
    """A TLS socket on which each LDAP operation, not each read, has one deadline.

    ldap3 sends a request with one ``sendall`` and reads its answer with as
    many ``recv`` as it takes, each with the whole timeout. Here the clock
    starts with the request, and every read gets only what is left of it.
    """

    operation_timeout: float | None = None
    _deadline: float | None = None

    def sendall(self, data: ReadableBuffer, flags: int = 0) -> None:
        if self.operation_timeout is not None:
            self._deadline = time.monotonic() + self.operation_timeout
        self._keep_deadline()
        super().sendall(data, flags)

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        self._keep_deadline()
        return super().recv(buflen, flags)

    def _keep_deadline(self) -> None:
        if self._deadline is None:
            return
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no complete answer within LDAP_TIMEOUT")
        self.settimeout(left)


def _failure(exc: LDAPException, message: str) -> DirectoryUnavailable:
    """The error for a connection that failed: NoAnswer when it was a timeout.

    ldap3 re-raises a socket error as a class that is both its own and the
    original (so a timeout is still a TimeoutError); after trying several
    addresses it lists each one's error instead.
    """
    tried = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], list) else []
    errors = [exc, *(item[0] for item in tried if isinstance(item, tuple) and item)]
    if any(isinstance(error, (TimeoutError, LDAPResponseTimeoutError)) for error in errors):
        return NoAnswer(message)
    return DirectoryUnavailable(message)


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


def _forget_identity(conn: Connection) -> bool:
    """Bind anonymously, so the user who just bound here is no one on this connection any more.

    The password leaves the connection object too. False if the directory
    did not confirm (the connection must then be closed, never reused).
    """
    conn.authentication = ANONYMOUS
    conn.user, conn.password = None, None
    try:
        return bool(conn.bind())
    except LDAPException:
        return False


def _close(conn: Connection) -> None:
    try:
        conn.unbind()
    except (LDAPException, OSError):
        log.debug("closing an LDAP connection failed; it is gone anyway")
