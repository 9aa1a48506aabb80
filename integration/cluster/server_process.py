"""Run the inference server (`sesa-server serve`) next to the embedded node, as a background process.

Also the one launcher of `sesa-server serve` children: :func:`server_env` (the environment they get),
:class:`SpawnedServer` (spawn with a log file, wait for the ``--ready-file``, stop) and :func:`terminate`
(SIGTERM, wait, SIGKILL). The end-to-end tests (integration/tests/inference_servers.py) and the server
benchmark (integration/bench/server.py) start their servers through them too.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import SesaError
from .node import live_state, load_state, pid_alive, pid_runs, port_in_use
from .paths import StatePaths

SERVER_CLI = [sys.executable, "-m", "inference_server.cli"]
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def server_env(extra: dict[str, str] | None = None, *, defaults: dict[str, str] | None = None,
               isolated: bool = False, force_offline: bool = True) -> dict[str, str]:
    """The environment a server child gets: this process's, with the model hubs offline (:data:`OFFLINE`;
    with ``force_offline=False`` only where the environment does not say otherwise), ``defaults`` where the
    environment has no value, and ``extra`` over all. ``isolated`` drops every SESA_SERVER_* setting first,
    so a developer's shell cannot change what a test starts."""
    env = dict(os.environ)
    if isolated:
        for k in list(env):
            if k.startswith("SESA_SERVER_"):
                env.pop(k)
    if force_offline:
        env.update(OFFLINE)
    for k, v in {**OFFLINE, **(defaults or {})}.items():
        env.setdefault(k, v)
    env.update(extra or {})
    return env


def terminate(pid: int, timeout_s: float = 30, *, group: bool = False) -> None:
    """SIGTERM, up to ``timeout_s`` for the process to exit, then SIGKILL; to its whole process group with
    ``group``."""
    def send(sig: int) -> None:
        if group:
            os.killpg(os.getpgid(pid), sig)
        else:
            os.kill(pid, sig)

    send(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.2)
    if pid_alive(pid):
        send(signal.SIGKILL)


class ServerNotReady(Exception):
    """The server exited (``returncode``) or did not write its ready file in time (``returncode`` None)."""

    def __init__(self, returncode: int | None):
        super().__init__(f"server exited {returncode}" if returncode is not None else "server did not start")
        self.returncode = returncode


class SpawnedServer:
    """``sesa-server serve ARGS`` as a child process, its output in ``log`` (appended to with
    ``append_log``), in a session of its own unless ``new_session`` is False. With ``ready_file`` the server
    gets ``--ready-file`` and :meth:`wait_ready` returns the ports it writes there."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str], *, ready_file: Path | None = None,
                 executable: list[str] | None = None, append_log: bool = False, new_session: bool = True):
        self.log = log
        self.ready = ready_file
        cmd = [*(executable or SERVER_CLI), "serve", *args]
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)
            cmd += ["--ready-file", str(ready_file)]
        self.started = time.monotonic()
        with open(log, "ab" if append_log else "wb") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, start_new_session=new_session)
        self.pid = self.proc.pid
        self.start_seconds = 0.0

    def wait_ready(self, timeout_s: float) -> tuple[int, ...]:
        """The ports in the ready file ("<grpc port> <metrics port>") once the server wrote it (models loaded,
        port bound); :class:`ServerNotReady` if it exits first, or, stopped, after ``timeout_s`` from the
        start."""
        assert self.ready is not None, "wait_ready needs a ready_file"
        deadline = self.started + timeout_s
        while time.monotonic() < deadline:
            if self.ready.is_file() and self.ready.read_text().strip():
                ports = tuple(int(p) for p in self.ready.read_text().split())
                self.start_seconds = time.monotonic() - self.started
                return ports
            if self.proc.poll() is not None:
                raise ServerNotReady(self.proc.returncode)
            time.sleep(0.2)
        self.stop()
        raise ServerNotReady(None)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would: no graceful shutdown, no goodbye to the clients."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self, timeout_s: float = 30) -> None:
        """:func:`terminate` (the process alone, not its group), then reap it."""
        if self.proc.poll() is None:
            terminate(self.pid, timeout_s)
            self.proc.wait(30)


@dataclass
class ServerState:
    pid: int
    address: str
    log: str


def server_executable() -> list[str]:
    beside = Path(sys.executable).parent / "sesa-server"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("sesa-server")
    if found:
        return [found]
    return list(SERVER_CLI)


def health(address: str, timeout_s: float = 2.0) -> tuple[str, str]:
    """(status, detail) of the standard gRPC health check: SERVING, NOT_SERVING or UNREACHABLE."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
            return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status), ""
    except grpc.RpcError as exc:
        return "UNREACHABLE", f"{exc.code().name}: {exc.details()}"


def runtime_info(address: str, timeout_s: float = 5.0) -> dict:
    """What runs each model, per the server's Info: device, CPU instruction sets, and per model the engine,
    precision and why (``runtime.precision: auto`` on this CPU, or the config); ``{"reason": ...}`` when Info
    cannot be read (e.g. a server that wants a token)."""
    import grpc

    from ..inference import InferenceClient

    try:
        with InferenceClient(address, timeout_s=timeout_s) as client:
            info = client.info()
    except grpc.RpcError as exc:
        return {"reason": f"Info: {exc.code().name}: {exc.details()}"}
    return {"device": info.device, "cpu_features": list(info.cpu_features),
            "models": [{"role": m.role, "id": m.ref.id, "engine": m.engine or "onnxruntime", "precision": m.precision,
                        "why": m.choice_reason} for m in info.models]}


def read_state(paths: StatePaths) -> ServerState | None:
    return load_state(paths.server_state, ServerState)


def running_server(paths: StatePaths) -> ServerState | None:
    """The server that `up` started, if its process is still alive."""
    return live_state(paths.server_state, ServerState, "serve")


def start(paths: StatePaths, host: str, port: int, config: Path | None, timeout_s: float = 1800,
          extra_args: tuple[str, ...] = ()) -> ServerState:
    """Start the server unless ours already runs; wait until its health check says SERVING.

    The first start exports the models and builds the concept space (minutes on a small CPU), so the
    wait is long and progress is reported from the server's log.
    """
    address = f"{host}:{port}"
    existing = running_server(paths)
    if existing:
        if existing.address != address:
            raise SesaError(f"our inference server already runs on {existing.address}: `sesa down` first")
        _wait_serving(existing, timeout_s)
        return existing
    if port_in_use(port, host):
        status, _ = health(address)
        raise SesaError(
            f"port {port} is already in use (health: {status}): stop that process or use --server-port N"
        )
    paths.server.mkdir(parents=True, exist_ok=True)
    args = ["--host", host, "--port", str(port), *extra_args]
    if config is not None:
        args += ["--config", str(config)]
    defaults = {"SESA_HOME": str(paths.home)}
    if config is None:
        # The embedded server shares its cores with the OpenSearch node: spinning ORT workers would keep
        # burning CPU after each Encode, just when the node runs the searches that follow it (hybrid p50
        # 1.4-1.7x -> see README "Benchmarks"). A config file or the environment may still say otherwise.
        defaults["SESA_SERVER_RUNTIME__ALLOW_SPINNING"] = "false"
    child = SpawnedServer(args, paths.server_log, server_env(defaults=defaults, force_offline=False),
                          executable=server_executable(), append_log=True)
    state = ServerState(child.pid, address, str(paths.server_log))
    paths.server_state.write_text(json.dumps(asdict(state)))
    print(f"starting the inference server on {address} (log: {paths.server_log}) ...", flush=True)
    _wait_serving(state, timeout_s)
    return state


def _wait_serving(state: ServerState, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last_line = ""
    while time.monotonic() < deadline:
        if not pid_alive(state.pid):
            raise SesaError(f"the inference server exited; last log lines:\n{_tail(Path(state.log))}")
        status, _ = health(state.address, 1.0)
        if status == "SERVING":
            return
        line = _tail(Path(state.log), 1)
        if line and line != last_line:
            print(f"  server: {line[:160]}", flush=True)
            last_line = line
        time.sleep(1.0)
    raise SesaError(f"the inference server on {state.address} was not SERVING after {timeout_s:.0f}s")


def _tail(path: Path, lines: int = 15) -> str:
    if not path.is_file():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def stop(paths: StatePaths, timeout_s: float = 30) -> bool:
    state = read_state(paths)
    if not state or not pid_runs(state.pid, "serve"):
        paths.server_state.unlink(missing_ok=True)
        return False
    terminate(state.pid, timeout_s, group=True)
    paths.server_state.unlink(missing_ok=True)
    return True
