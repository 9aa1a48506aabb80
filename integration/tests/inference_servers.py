"""Helpers the end-to-end tests share to run real ``sesa-server serve`` processes: a clean environment,
test certificates made with openssl, and a server process that reports its ports through
``--ready-file``.

Used by test_server_e2e (TLS/mTLS/token on the server alone) and test_scale_out_e2e (replicas behind a
two-node cluster).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from integration.cluster import server_process
from integration.cluster.server_process import ServerNotReady, SpawnedServer

CLI = server_process.SERVER_CLI


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any SESA_SERVER_* setting (so a developer's shell cannot change
    what a test starts), offline model hubs, plus ``extra``."""
    return server_process.server_env(extra, isolated=True)


def make_certs(d: Path, ca_name: str = "sesa-test-ca") -> dict[str, Path]:
    """CA, server cert (SAN 127.0.0.1/localhost) and client cert, all signed by the CA. Keys are
    unencrypted PKCS#8 PEM (what openssl 3 writes and what the plugin reads). Call again with another
    folder and ``ca_name`` for certificates a server must not trust."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not found: cannot make test certificates")
    d.mkdir(parents=True, exist_ok=True)

    def ossl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60, cwd=d)

    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
         "-subj", f"/CN={ca_name}")
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, ext in (("server", ["-extfile", "server.ext"]), ("client", [])):
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", f"/CN={'localhost' if name == 'server' else 'sesa-test-client'}")
        ossl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", f"{name}.pem", "-days", "2", *ext)
    return {n: d / n for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


class ServerProcess(SpawnedServer):
    """``sesa-server serve`` on 127.0.0.1; returns once the server wrote its ready file (models loaded,
    port bound). ``port=0`` lets the server pick a free port; ``pid_file`` gets the pid at once, so a later
    run can find a server an interrupted one left behind (its command line names its ready file)."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str], port: int = 0, timeout_s: float = 300,
                 pid_file: Path | None = None):
        super().__init__(["--host", "127.0.0.1", "--port", str(port), *args], log, env,
                         ready_file=log.with_suffix(".ready"))
        if pid_file is not None:
            pid_file.write_text(str(self.pid))
        try:
            self.port, self.metrics_port = self.wait_ready(timeout_s)[:2]
        except ServerNotReady as exc:
            if exc.returncode is None:
                raise AssertionError(f"server did not start: {log.read_text()[-3000:]}") from None
            raise AssertionError(f"server exited {exc.returncode}: {log.read_text()[-3000:]}") from None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def metric_value(metrics_port: int, name: str, labels: dict[str, str]) -> float:
    """One sample of a Prometheus counter on the server's /metrics (0 when the series does not exist yet)."""
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        series, _, value = line.rpartition(" ")
        found = dict(part.split("=", 1) for part in series[len(name) + 1:-1].split(",") if "=" in part)
        if all(found.get(k) == f'"{v}"' for k, v in labels.items()):
            total += float(value)
    return total
