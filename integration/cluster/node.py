"""Lifecycle of the embedded single-node OpenSearch: configure, start as an unprivileged user, wait, stop.

OpenSearch refuses to run as root, so a root caller starts it as the system user `opensearch-sesa`
(created on first use) through `runuser`. A non-root caller runs it as itself.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .assembly import check_traversable, make_tree_owned_by
from .errors import SesaError
from .paths import StatePaths

NODE_USER = "opensearch-sesa"
CLUSTER_NAME = "sesa-embedded"
# JVM heap of the embedded node. Not 1g: with 1g, after a session of evaluations the parent circuit breaker (which
# counts real heap use, garbage included) refused `sesa tune`'s searches with 429 "Data too large" while the live
# heap was 70 MB (2026-12-07, OpenSearch 3.5 on Temurin 25, G1); 2g ran the same session through.
DEFAULT_HEAP = "2g"


@dataclass
class NodeConfig:
    http_port: int = 9200
    transport_port: int = 9300
    heap: str = DEFAULT_HEAP
    inference_endpoints: tuple[str, ...] = ("127.0.0.1:50051",)
    extra_settings: dict | None = None


@dataclass
class NodeState:
    home: str
    http_port: int
    transport_port: int
    pid: int
    user: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return True


def pid_runs(pid: int, marker: str) -> bool:
    """True if `pid` is alive AND its command line mentions `marker`: a pid file can outlive its process
    and the number can be reused by an unrelated one."""
    if not pid_alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return marker.encode() in fh.read()
    except OSError:
        return True  # no /proc: trust the signal check


def ensure_node_user() -> tuple[str, int, int]:
    """The user the node runs as: ourselves unless we are root."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return entry.pw_name, entry.pw_uid, entry.pw_gid
    try:
        entry = pwd.getpwnam(NODE_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        proc = subprocess.run(
            [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", NODE_USER],
            capture_output=True, text=True,
        )
        if proc.returncode != 0 and "already exists" not in proc.stderr:
            raise SesaError(f"could not create the unprivileged user {NODE_USER!r}: {proc.stderr.strip()}")
        entry = pwd.getpwnam(NODE_USER)
    return entry.pw_name, entry.pw_uid, entry.pw_gid


def as_node_user(cmd: list[str], env: dict[str, str], user: str) -> tuple[list[str], dict[str, str]]:
    """(command, Popen environment) that run `cmd` with exactly `env` as `user` when we are root (runuser
    drops the environment, so `env` goes through `env K=V`), or as ourselves with `env` added otherwise."""
    if os.geteuid() == 0:
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        return [runuser, "-u", user, "--", "env", *[f"{k}={v}" for k, v in env.items()], *cmd], dict(env)
    return cmd, dict(os.environ, **env)


def load_state(state_file: Path, kind: type) -> Any:
    """The process record `up` wrote (a JSON object of ``kind``'s fields), or None when missing or unreadable."""
    if not state_file.is_file():
        return None
    try:
        return kind(**json.loads(state_file.read_text()))
    except (ValueError, TypeError):
        return None


def live_state(state_file: Path, kind: type, marker: str) -> Any:
    """The record of a process `up` started, if that pid still runs a command line holding ``marker``."""
    state = load_state(state_file, kind)
    return state if state and pid_runs(state.pid, marker) else None


def read_state(paths: StatePaths) -> NodeState | None:
    return load_state(paths.node_state, NodeState)


def running_node(paths: StatePaths) -> NodeState | None:
    """The node that `up` started, if its process is still alive."""
    return live_state(paths.node_state, NodeState, "org.opensearch.bootstrap")


def _render_yaml(home: Path, config: NodeConfig, paths: StatePaths) -> str:
    endpoints = ", ".join(f'"{e}"' for e in config.inference_endpoints)
    lines = [
        "# Written by `sesa up`; edits are overwritten on the next start.",
        f"cluster.name: {CLUSTER_NAME}",
        "node.name: sesa-node-1",
        f"path.data: {paths.node_data}",
        f"path.logs: {paths.node_logs}",
        "network.host: 127.0.0.1",
        f"http.port: {config.http_port}",
        f"transport.port: {config.transport_port}",
        "discovery.type: single-node",
        "cluster.routing.allocation.disk.threshold_enabled: false",
        "action.auto_create_index: true",
    ]
    if (home / "plugins" / "opensearch-sesa").is_dir():
        lines.append(f"sesa.inference.endpoints: [{endpoints}]")
    for key, value in (config.extra_settings or {}).items():
        lines.append(f"{key}: {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def configure(home: Path, config: NodeConfig, paths: StatePaths) -> None:
    (home / "config" / "opensearch.yml").write_text(_render_yaml(home, config, paths))
    options = home / "config" / "jvm.options.d"
    options.mkdir(exist_ok=True)
    (options / "sesa-heap.options").write_text(f"-Xms{config.heap}\n-Xmx{config.heap}\n")


def _tail(path: Path, lines: int = 15) -> str:
    if not path.is_file():
        return "(no log yet)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_for_health(url: str, timeout_s: float, pid: int | None = None, log: Path | None = None) -> dict:
    """Poll _cluster/health until yellow or green; fail fast if the process dies."""
    import urllib.request

    deadline = time.monotonic() + timeout_s
    last_error = ""
    while time.monotonic() < deadline:
        if pid is not None and not pid_alive(pid):
            raise SesaError(f"OpenSearch exited during start-up; last log lines:\n{_tail(log) if log else ''}")
        try:
            with urllib.request.urlopen(
                f"{url}/_cluster/health?wait_for_status=yellow&timeout=2s", timeout=5
            ) as resp:
                body = json.loads(resp.read())
                if body.get("status") in ("yellow", "green"):
                    return body
        except Exception as exc:  # noqa: BLE001 - any failure means "not up yet"
            last_error = str(exc)
        time.sleep(1.0)
    raise SesaError(f"OpenSearch at {url} was not healthy after {timeout_s:.0f}s ({last_error})")


def start(home: Path, java_home: Path, config: NodeConfig, paths: StatePaths, timeout_s: float = 240) -> NodeState:
    existing = running_node(paths)
    if existing:
        if existing.http_port != config.http_port:
            raise SesaError(
                f"an embedded node is already running on port {existing.http_port}: `sesa down` first"
            )
        wait_for_health(existing.url, timeout_s, existing.pid, paths.node_logs / f"{CLUSTER_NAME}.log")
        return existing
    for port, what in ((config.http_port, "HTTP"), (config.transport_port, "transport")):
        if port_in_use(port):
            raise SesaError(
                f"port {port} ({what}) is already in use by another process: stop it or choose another "
                "port with `sesa up --port N`"
            )
    user, uid, gid = ensure_node_user()
    for folder in (paths.node, paths.node_data, paths.node_logs):
        folder.mkdir(parents=True, exist_ok=True)
    configure(home, config, paths)
    if os.geteuid() == 0:
        check_traversable(home, user)
        check_traversable(paths.node, user)
        make_tree_owned_by(home, uid, gid)
        make_tree_owned_by(paths.node, uid, gid)
    paths.node_pid.unlink(missing_ok=True)
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "OPENSEARCH_JAVA_HOME": str(java_home),
        "OPENSEARCH_PATH_CONF": str(home / "config"),
        "HOME": str(paths.node),
        "LANG": "C.UTF-8",
    }
    cmd, popen_env = as_node_user([str(home / "bin" / "opensearch"), "-p", str(paths.node_pid)], env, user)
    started = time.monotonic()
    console = paths.node / "console.log"
    with open(console, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=popen_env, cwd=str(home), start_new_session=True)
    deadline = time.monotonic() + timeout_s
    url = f"http://127.0.0.1:{config.http_port}"
    while True:
        if proc.poll() is not None:
            raise SesaError(f"OpenSearch exited during start-up (code {proc.returncode}):\n{_tail(console)}")
        try:
            wait_for_health(url, 2)
            break
        except SesaError:
            if time.monotonic() > deadline:
                proc.kill()
                raise SesaError(f"OpenSearch was not healthy after {timeout_s:.0f}s:\n{_tail(console)}")
    pid = _wait_for_pid(paths.node_pid, 30)
    state = NodeState(str(home), config.http_port, config.transport_port, pid, user)
    paths.node_state.write_text(json.dumps(asdict(state)))
    print(f"OpenSearch is up on {state.url} (pid {pid}, user {user}, {time.monotonic() - started:.0f}s)")
    return state


def _wait_for_pid(pid_file: Path, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pid_file.is_file():
            text = pid_file.read_text().strip()
            if text.isdigit():
                return int(text)
        time.sleep(0.2)
    raise SesaError(f"OpenSearch wrote no pid file at {pid_file}")


def stop(paths: StatePaths, timeout_s: float = 60) -> bool:
    """Stop the node `up` started; True if one was running."""
    state = read_state(paths)
    if not state or not pid_runs(state.pid, "org.opensearch.bootstrap"):
        paths.node_state.unlink(missing_ok=True)
        return False
    os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and pid_alive(state.pid):
        time.sleep(0.3)
    if pid_alive(state.pid):
        os.kill(state.pid, signal.SIGKILL)
    paths.node_state.unlink(missing_ok=True)
    return True
