"""`sesa up` / `sesa down` / `sesa status`: the embedded default (node + plugin + inference server) or an
existing cluster, with the templates and pipelines of `schemas/` applied."""

from __future__ import annotations

import glob
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .. import schemas
from . import assembly, node, server_process
from .errors import SesaError
from .java import find_java_home
from .paths import StatePaths, state_paths
from .templates import ModelFacts, apply_all


@dataclass
class UpOptions:
    port: int = 9200
    heap: str = node.DEFAULT_HEAP
    cluster_url: str | None = None
    server_host: str = "127.0.0.1"
    server_port: int = 50051
    server_config: Path | None = None
    start_server: bool = True
    plugin_zip: Path | None = None
    inference_endpoints: tuple[str, ...] | None = None
    # Extra `sesa-server serve` arguments (e.g. --reranker DIR).
    server_args: tuple[str, ...] = ()
    # Where to ask for Info (dense dimension, model ids) when we do not start the server ourselves.
    server_address: str | None = None


def find_plugin_zip(build_if_missing: bool = True) -> Path:
    """Newest plugin/target/releases/opensearch-sesa-*.zip; built with Maven if absent."""
    root = schemas.repo_root() / "plugin"
    pattern = str(root / "target" / "releases" / "opensearch-sesa-*.zip")
    zips = sorted(glob.glob(pattern), key=lambda p: Path(p).stat().st_mtime)
    if zips:
        return Path(zips[-1])
    if not build_if_missing:
        raise SesaError(f"no plugin zip matches {pattern}: run plugin/build.sh -DskipTests")
    build = root / "build.sh"
    if not build.is_file():
        raise SesaError(f"no plugin zip and no {build}: pass --plugin-zip PATH")
    print("building the plugin zip (first run only) ...", flush=True)
    proc = subprocess.run(["bash", str(build), "-DskipTests", "-q"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SesaError("plugin build failed: " + (proc.stdout + proc.stderr).strip()[-800:])
    return find_plugin_zip(build_if_missing=False)


def opensearch_client(url: str):
    from opensearchpy import OpenSearch

    return OpenSearch(hosts=[url], timeout=60, retry_on_timeout=True, max_retries=2)


def model_facts(address: str) -> ModelFacts:
    import grpc

    from ..inference import InferenceClient

    try:
        with InferenceClient(address, timeout_s=10) as client:
            return client.model_facts()
    except grpc.RpcError as exc:
        raise SesaError(
            f"the index template needs the inference server's Info (dense dimension, model ids), but "
            f"{address} answered {exc.code().name}: start `sesa-server serve` or pass --server HOST:PORT"
        ) from None


def up(options: UpOptions, paths: StatePaths | None = None) -> dict:
    """Bring everything up (idempotent); returns a summary dict."""
    paths = paths or state_paths()
    started = time.monotonic()
    summary: dict = {"state_dir": str(paths.home)}
    server_address = options.server_address or f"{options.server_host}:{options.server_port}"
    if options.start_server:
        srv = server_process.start(paths, options.server_host, options.server_port, options.server_config,
                                   extra_args=options.server_args)
        summary["inference_server"] = {"address": srv.address, "pid": srv.pid, "log": srv.log}
    if options.cluster_url:
        url = options.cluster_url.rstrip("/")
    else:
        state = _start_node(options, paths)
        url = state.url
        summary["node"] = {"url": url, "pid": state.pid, "home": state.home, "user": state.user}
    client = opensearch_client(url)
    node.wait_for_health(url, 120)
    facts = model_facts(server_address)
    report = apply_all(client, facts)
    summary["applied"] = report.applied
    summary["seconds"] = round(time.monotonic() - started, 1)
    return summary


def _start_node(options: UpOptions, paths: StatePaths) -> node.NodeState:
    java_home = find_java_home()
    plugin_zip = options.plugin_zip or find_plugin_zip()
    built = assembly.assemble(paths, java_home, plugin_zip)
    server_address = options.server_address or f"{options.server_host}:{options.server_port}"
    endpoints = options.inference_endpoints or (server_address,)
    cfg = node.NodeConfig(http_port=options.port, transport_port=options.port + 100, heap=options.heap,
                          inference_endpoints=tuple(endpoints))
    return node.start(built.home, java_home, cfg, paths)


def restart_node(options: UpOptions, paths: StatePaths | None = None) -> node.NodeState:
    """Stop and start the embedded node with the same settings, and re-apply nothing: pipelines, the
    template and cluster settings must survive from the node's own persisted cluster state."""
    paths = paths or state_paths()
    node.stop(paths)
    state = _start_node(options, paths)
    node.wait_for_health(state.url, 120)
    return state


def down(paths: StatePaths | None = None) -> dict:
    paths = paths or state_paths()
    return {"node_stopped": node.stop(paths), "server_stopped": server_process.stop(paths)}


def status(paths: StatePaths | None = None, cluster_url: str | None = None,
           server_address: str | None = None) -> dict:
    """Health of the node, installed plugins with versions, and the inference server's health."""
    paths = paths or state_paths()
    result: dict = {"state_dir": str(paths.home)}
    state = node.running_node(paths)
    url = cluster_url or (state.url if state else None)
    if url is None:
        result["node"] = {"status": "down"}
    else:
        try:
            client = opensearch_client(url)
            health = client.cluster.health()
            plugins = client.cat.plugins(format="json")
            result["node"] = {
                "url": url,
                "status": health["status"],
                "pid": state.pid if state else None,
                "plugins": sorted({f"{p['component']} {p['version']}" for p in plugins}),
            }
            from .indices import sesa_indices

            result["indices"] = sesa_indices(client)
        except Exception as exc:  # noqa: BLE001 - status must report, not crash
            result["node"] = {"url": url, "status": "unreachable", "reason": str(exc)[:300]}
    srv = server_process.running_server(paths)
    address = server_address or (srv.address if srv else schemas.conventions()["default_inference_endpoint"])
    grpc_status, detail = server_process.health(address)
    result["inference_server"] = {"address": address, "health": grpc_status, "pid": srv.pid if srv else None}
    if detail:
        result["inference_server"]["reason"] = detail
    if grpc_status == "SERVING":
        result["inference_server"]["runtime"] = server_process.runtime_info(address)
    return result
