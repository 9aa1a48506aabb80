"""What a report must say about where it was measured: versions of the cluster, our plugin and the models,
and the hardware. Every probe degrades to {"unavailable": reason}; none raises."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
import subprocess
from typing import Any

from .. import schemas


def _reason(exc: Exception) -> str:
    """One line: a gRPC status and its details, an HTTP status and the cluster's reason, or the exception."""
    code = getattr(exc, "code", None)
    if callable(code) and callable(getattr(exc, "details", None)):  # grpc.RpcError
        try:
            text = f"gRPC {code().name}: {exc.details()}"
        except Exception:  # noqa: BLE001
            text = f"{type(exc).__name__}: {exc}"
    elif isinstance(getattr(exc, "status_code", None), int):  # opensearchpy TransportError
        error = getattr(exc, "error", "")
        info = getattr(exc, "info", None)
        detail = info.get("error") if isinstance(info, dict) else info
        if isinstance(detail, dict):
            detail = detail.get("reason") or detail.get("type")
        text = f"HTTP {exc.status_code} {detail or error}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:300]


def hardware() -> dict[str, Any]:
    out: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_model": None,
        "cpu_cores_logical": os.cpu_count(),
    }
    try:
        out["cpu_cores_usable"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        pass
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    out["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        out["cpu_model"] = platform.processor() or None
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    out["memory_gib"] = round(int(line.split()[1]) / (1024 * 1024), 1)
                    break
    except (OSError, ValueError, IndexError):
        pass
    out["gpus"] = gpus()
    return out


def gpus() -> list[dict[str, str]]:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        proc = subprocess.run([exe, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    found = []
    for line in proc.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            found.append({"name": parts[0], "memory": parts[1], "driver": parts[2]})
    return found


def opensearch(client) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        info = client.info()
        out["version"] = info.get("version", {}).get("number")
        out["distribution"] = info.get("version", {}).get("distribution")
        out["cluster_name"] = info.get("cluster_name")
    except Exception as exc:  # noqa: BLE001
        out["unavailable"] = _reason(exc)
        return out
    try:
        plugins = client.cat.plugins(format="json")
        out["plugins"] = sorted({f"{p['component']} {p['version']}" for p in plugins})
    except Exception as exc:  # noqa: BLE001
        out["plugins"] = {"unavailable": _reason(exc)}
    return out


def sesa_plugin(client) -> dict[str, Any]:
    """GET /_plugins/sesa/info, or the reason it is not there."""
    try:
        body = client.transport.perform_request("GET", "/_plugins/sesa/info")
    except Exception as exc:  # noqa: BLE001
        return {"unavailable": _reason(exc)}
    if not isinstance(body, dict):
        return {"unavailable": f"unexpected response {str(body)[:200]}"}
    plugin = body.get("plugin", {})
    return {
        "name": plugin.get("name"),
        "version": plugin.get("version"),
        "serving_endpoints": body.get("serving_endpoints"),
        "endpoints": [e.get("endpoint") for e in body.get("endpoints", []) if isinstance(e, dict)],
    }


def default_server_address(plugin_info: dict[str, Any] | None = None) -> str:
    """SESA_SERVER, else the first endpoint the plugin reports, else the server `sesa up` started, else the
    conventions' default."""
    if os.environ.get("SESA_SERVER"):
        return os.environ["SESA_SERVER"]
    endpoints = (plugin_info or {}).get("endpoints") or []
    if endpoints:
        return str(endpoints[0])
    try:
        from ..cluster import server_process
        from ..cluster.paths import state_paths

        state = server_process.running_server(state_paths())
        if state:
            return state.address
    except Exception:  # noqa: BLE001
        pass
    return schemas.conventions()["default_inference_endpoint"]


def inference_server(address: str, timeout_s: float = 5.0) -> dict[str, Any]:
    """The server's Info (models with ids and versions, device, limits), or why it could not be read."""
    try:
        from google.protobuf.json_format import MessageToDict

        from ..inference import InferenceClient

        with InferenceClient(address, timeout_s=timeout_s) as client:
            info = client.info()
        out = MessageToDict(info, preserving_proto_field_name=True)
        out["address"] = address
        out["models_summary"] = [
            f"{m.role}: {m.ref.id}@{m.ref.version}" + (f" ({m.precision})" if m.precision else "")
            for m in info.models
        ]
        if info.HasField("concept_space") and info.concept_space.name:
            cs = info.concept_space
            out["models_summary"].append(f"concepts: {cs.name}@{cs.version} ({cs.size} concepts)")
        return out
    except Exception as exc:  # noqa: BLE001
        return {"address": address, "unavailable": _reason(exc)}


def git_revision() -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(schemas.repo_root()), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=False)
        rev = proc.stdout.strip()
        if proc.returncode != 0 or not rev:
            return None
        dirty = subprocess.run(["git", "-C", str(schemas.repo_root()), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=False).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
