"""Run the inference server (`sesa-server serve`) next to the embedded node, as a background process."""

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
from .node import pid_alive, pid_runs, port_in_use
from .paths import StatePaths


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
    return [sys.executable, "-m", "inference_server.cli"]


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


def read_state(paths: StatePaths) -> ServerState | None:
    if not paths.server_state.is_file():
        return None
    try:
        return ServerState(**json.loads(paths.server_state.read_text()))
    except (ValueError, TypeError):
        return None


def running_server(paths: StatePaths) -> ServerState | None:
    state = read_state(paths)
    if state and pid_runs(state.pid, "serve"):
        return state
    return None


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
    cmd = [*server_executable(), "serve", "--host", host, "--port", str(port), *extra_args]
    if config is not None:
        cmd += ["--config", str(config)]
    env = dict(os.environ)
    env.setdefault("SESA_HOME", str(paths.home))
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    if config is None:
        # The embedded server shares its cores with the OpenSearch node: spinning ORT workers would keep
        # burning CPU after each Encode, just when the node runs the searches that follow it (hybrid p50
        # 1.4-1.7x -> see README "Benchmarks"). A config file or the environment may still say otherwise.
        env.setdefault("SESA_SERVER_RUNTIME__ALLOW_SPINNING", "false")
    log = open(paths.server_log, "ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, start_new_session=True)
    state = ServerState(proc.pid, address, str(paths.server_log))
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
    os.killpg(os.getpgid(state.pid), signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and pid_alive(state.pid):
        time.sleep(0.2)
    if pid_alive(state.pid):
        os.killpg(os.getpgid(state.pid), signal.SIGKILL)
    paths.server_state.unlink(missing_ok=True)
    return True
