"""Throwaway TLS material, so the lab's slapd is reached over verified TLS."""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Our own config, so the system openssl.cnf's defaults (e.g. CA:TRUE on every
# -x509 certificate) cannot leak into the server certificate.
_OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    cert_file: Path
    key_file: Path


def make_pki(directory: Path) -> Pki:
    """Create a CA and a loopback server certificate, or reuse the ones already there.

    Reuse keeps a demo's clients (which may have pinned ca_file) working across
    restarts. The CA key is deleted once it has signed: nothing can be minted
    from it later, and a partial set is simply remade from scratch.
    """
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    if all(p.exists() for p in (pki.ca_file, pki.cert_file, pki.key_file)):
        return pki
    # Made aside and moved in, so a failure never leaves a mismatched set.
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        Path(tmp, "openssl.cnf").write_text(_OPENSSL_CNF)
        req = "openssl req -config openssl.cnf -x509 -nodes -newkey ec -pkeyopt"
        req += " ec_paramgen_curve:P-256 -extensions"
        _run(f"{req} ca -days 3650 -subj /CN=sspm-lab-ca -keyout ca.key -out ca.pem", tmp)
        _run(
            f"{req} server -days 825 -subj /CN=localhost -CA ca.pem -CAkey ca.key -keyout server.key -out server.pem",
            tmp,
        )
        for name in ("server.key", "server.pem", "ca.pem"):
            os.replace(Path(tmp, name), directory / name)
    return pki


def _run(command: str, cwd: str) -> None:
    done = subprocess.run(command.split(), cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed: {done.stderr.strip()}")
