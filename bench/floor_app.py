"""The floor for bench/change_password.py: the least a web app can do to change a password.

A Flask app served by the same gunicorn as SSPM, reading the same
directory settings (``LDAP_URL``, ``LDAP_CA_FILE``, ``LDAP_BIND_DN``,
``LDAP_BIND_PASSWORD``, ``LDAP_BASE_DN``, ``LDAP_USER_FILTER``,
``DIRECTORY_KIND``). ``POST /change`` finds the account with SSPM's own user
filter over a reused service-account LDAPS connection, binds as the user on
a second reused LDAPS connection, and changes the password as that user
(Password Modify on OpenLDAP, the delete-old/add-new ``unicodePwd`` modify on
AD): the three directory operations a change cannot do without, and nothing
else. No CSRF, session, limit, password rule, lock check, audit,
notification, sign-in, metric or log line, and the user connection is left
bound as the last user. It is a measuring stick, not a design: it shows what
Python, Flask, gunicorn and ldap3 cost on their own, so that SSPM's figure
can be read as that floor plus what its features cost.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
from urllib.parse import urlsplit

from flask import Flask, redirect, request
from ldap3 import NONE, SIMPLE, SUBTREE, Connection, Server, Tls
from ldap3.utils.conv import escape_filter_chars
from werkzeug.wrappers import Response

app = Flask(__name__)
_local = threading.local()


def _server() -> Server:
    url = urlsplit(os.environ["LDAP_URL"].split()[0])
    tls = Tls(ca_certs_file=os.environ["LDAP_CA_FILE"], validate=ssl.CERT_REQUIRED, version=ssl.PROTOCOL_TLS_CLIENT)
    return Server(url.hostname, port=url.port, use_ssl=True, tls=tls, get_info=NONE, connect_timeout=5)


def _connections() -> tuple[Connection, Connection]:
    """This thread's service and user connections, opened on its first request and kept."""
    if not hasattr(_local, "service"):
        service = Connection(
            _server(), os.environ["LDAP_BIND_DN"], os.environ["LDAP_BIND_PASSWORD"], raise_exceptions=False
        )
        user = Connection(_server(), raise_exceptions=False)
        user.authentication = SIMPLE
        service.open(read_server_info=False)
        user.open(read_server_info=False)
        for conn in (service, user):
            conn.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not service.bind():
            raise RuntimeError(f"service bind refused: {service.result}")
        _local.service, _local.user = service, user
    return _local.service, _local.user


@app.get("/change")
def form() -> str:
    return '<form method="post"><input type="hidden" name="csrf_token" value="-"></form>'


@app.post("/change")
def change() -> tuple[str, int] | Response:
    service, user = _connections()
    login, old, new = request.form["username"], request.form["current"], request.form["new"]
    query = os.environ["LDAP_USER_FILTER"].format(login=escape_filter_chars(login))
    service.search(os.environ["LDAP_BASE_DN"], query, SUBTREE, attributes=["1.1"], size_limit=2)
    found = [entry["dn"] for entry in service.response or [] if entry.get("type") == "searchResEntry"]
    if len(found) != 1:
        return "unknown", 200
    user.user, user.password = found[0], old
    if not user.bind():
        return "refused", 200
    if os.environ["DIRECTORY_KIND"] == "ad":
        user.extend.microsoft.modify_password(found[0], new, old)
    else:
        user.extend.standard.modify_password(old_password=old, new_password=new)
    if user.result["result"] != 0:
        return "refused", 200
    return redirect("/change/done", code=303)
