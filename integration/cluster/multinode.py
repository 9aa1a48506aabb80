"""A small multi-node OpenSearch cluster on loopback, for tests of what one node cannot show: calls spread
over several nodes, shards and replicas on different nodes, node-local secure settings.

Every node runs from the same assembled home (distribution + k-NN + our plugin, see `assembly`) but with
its OWN config folder, selected with OPENSEARCH_PATH_CONF: the home's `config/` is left alone (the
embedded single node of `sesa up` uses it), and each node gets its own opensearch.yml, heap, keystore and
TLS files. Node folders live under one state folder:

    <state>/<node name>/{config/, data/, logs/, opensearch.pid, console.log}

bin/opensearch changes into the home before it starts the JVM, so the relative paths of jvm.options (gc
log, heap dumps, fatal error files) would land in the shared home, where the embedded node writes its own:
each node's copy of jvm.options points them at the node's logs/ and data/ instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .assembly import BASE_MARKER, check_traversable, install_sesa_plugin, make_tree_owned_by
from .errors import SesaError
from .node import as_node_user, ensure_node_user, pid_alive, pid_runs, port_in_use

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class ClusterConfig:
    """What every node of the cluster shares; node i (0-based) listens on `http_base + i` and
    `transport_base + i` and is named `<name_prefix>-<i+1>`."""

    cluster_name: str
    state_dir: Path
    nodes: int = 2
    http_base: int = 9251
    transport_base: int = 9351
    heap: str = "512m"
    name_prefix: str = "node"
    # plain node settings written to each opensearch.yml (values as JSON, which YAML reads)
    settings: dict = field(default_factory=dict)
    # secure settings for each node's keystore (never written to opensearch.yml)
    keystore: dict[str, str] = field(default_factory=dict)
    # files copied into each node's config folder: {relative name: source path}
    config_files: dict[str, Path] = field(default_factory=dict)


@dataclass
class ClusterNode:
    name: str
    http_port: int
    transport_port: int
    folder: Path
    proc: subprocess.Popen | None = None
    pid: int | None = None  # the JVM's pid (from -p), not runuser's

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def config_dir(self) -> Path:
        return self.folder / "config"

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def logs_dir(self) -> Path:
        return self.folder / "logs"

    @property
    def pid_file(self) -> Path:
        return self.folder / "opensearch.pid"

    @property
    def console(self) -> Path:
        return self.folder / "console.log"

    def running(self) -> bool:
        return self.pid is not None and pid_runs(self.pid, str(self.config_dir))


@dataclass
class Cluster:
    config: ClusterConfig
    nodes: list[ClusterNode]
    start_seconds: float = 0.0

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def log_files(self) -> list[Path]:
        """Everything the nodes wrote as logs: OpenSearch's own files and the console output."""
        files = [n.console for n in self.nodes if n.console.is_file()]
        for n in self.nodes:
            if n.logs_dir.is_dir():
                files += [p for p in n.logs_dir.rglob("*") if p.is_file()]
        return files

    def stop(self, timeout_s: float = 60) -> None:
        stop_nodes(self.nodes, timeout_s)


def private_home(base: Path, target: Path, java_home: Path, plugin_zip: Path) -> Path:
    """A copy of the assembled `base` home at `target` with `plugin_zip` installed in it.

    Installing a new plugin zip into the shared home would swap the jars under the embedded node that
    `sesa up` runs from it; the copy is made once (again when the base changes) and only the copy's plugin
    is reinstalled when the zip changes."""
    marker = (base / BASE_MARKER).read_text() if (base / BASE_MARKER).is_file() else None
    if marker is None:
        raise SesaError(f"{base} is not an assembled OpenSearch home (no {BASE_MARKER})")
    if not (target / BASE_MARKER).is_file() or (target / BASE_MARKER).read_text() != marker:
        shutil.rmtree(target, ignore_errors=True)
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(base, partial, symlinks=True,
                        ignore=lambda folder, names: names if Path(folder) == base / "logs" else [])
        partial.rename(target)
    install_sesa_plugin(target, java_home, plugin_zip)
    if os.geteuid() == 0:
        _, uid, gid = ensure_node_user()
        make_tree_owned_by(target, uid, gid)
    return target


def _tail(path: Path, lines: int = 20) -> str:
    if not path.is_file():
        return "(no output yet)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _node_env(home: Path, java_home: Path, node: ClusterNode) -> dict[str, str]:
    return {
        "PATH": PATH,
        "OPENSEARCH_JAVA_HOME": str(java_home),
        "OPENSEARCH_PATH_CONF": str(node.config_dir),
        "HOME": str(node.folder),
        "LANG": "C.UTF-8",
    }


def _render_yaml(config: ClusterConfig, node: ClusterNode, all_nodes: list[ClusterNode]) -> str:
    lines = [
        "# Written by integration.cluster.multinode; rewritten on every start.",
        f"cluster.name: {json.dumps(config.cluster_name)}",
        f"node.name: {json.dumps(node.name)}",
        f"path.data: {json.dumps(str(node.data_dir))}",
        f"path.logs: {json.dumps(str(node.logs_dir))}",
        "network.host: 127.0.0.1",
        f"http.port: {node.http_port}",
        f"transport.port: {node.transport_port}",
        f"discovery.seed_hosts: {json.dumps([f'127.0.0.1:{n.transport_port}' for n in all_nodes])}",
        f"cluster.initial_cluster_manager_nodes: {json.dumps([n.name for n in all_nodes])}",
        "cluster.routing.allocation.disk.threshold_enabled: false",
        "action.auto_create_index: true",
    ]
    for key, value in config.settings.items():
        lines.append(f"{key}: {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def _node_local_jvm_paths(text: str, node: ClusterNode) -> str:
    """jvm.options with its home-relative `logs/...` and `data` paths made absolute, inside the node."""
    text = re.sub(r"(?<=[=:])logs/", f"{node.logs_dir}/", text)
    return re.sub(r"(?m)^(-XX:HeapDumpPath=)data$", rf"\g<1>{node.data_dir}", text)


def _run_tool(home: Path, java_home: Path, node: ClusterNode, user: str, args: list[str],
              stdin: str | None = None) -> None:
    """Run a bin/ tool (the keystore CLI) as the node user against this node's config folder."""
    cmd, env = as_node_user([str(home / "bin" / args[0]), *args[1:]], _node_env(home, java_home, node), user)
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env, cwd=str(node.folder),
                          timeout=120, check=False)
    if proc.returncode != 0:
        # never echo stdin: it carries the secret
        raise SesaError(f"{' '.join(args[:2])} failed for {node.name} ({proc.returncode}): "
                        f"{(proc.stdout + proc.stderr).strip()[-600:]}")


def prepare_node(home: Path, java_home: Path, config: ClusterConfig, node: ClusterNode,
                 all_nodes: list[ClusterNode], user: str, uid: int, gid: int) -> None:
    """A fresh config folder (copy of the home's, minus its keystore), opensearch.yml, heap, files and
    keystore for one node."""
    shutil.rmtree(node.config_dir, ignore_errors=True)
    node.folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(home / "config", node.config_dir, symlinks=True)
    # the copied keystore belongs to the home's own node: never share secrets between nodes by accident
    (node.config_dir / "opensearch.keystore").unlink(missing_ok=True)
    (node.config_dir / "opensearch.yml").write_text(_render_yaml(config, node, all_nodes))
    jvm_options = node.config_dir / "jvm.options"
    jvm_options.write_text(_node_local_jvm_paths(jvm_options.read_text(), node))
    options = node.config_dir / "jvm.options.d"
    options.mkdir(exist_ok=True)
    for stale in options.glob("*.options"):
        stale.unlink()
    (options / "heap.options").write_text(f"-Xms{config.heap}\n-Xmx{config.heap}\n")
    for name, source in config.config_files.items():
        target = node.config_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        os.chmod(target, 0o640)
    for folder in (node.data_dir, node.logs_dir):
        folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        make_tree_owned_by(node.folder, uid, gid)
    if config.keystore:
        _run_tool(home, java_home, node, user, ["opensearch-keystore", "create"])
        for key, value in config.keystore.items():
            _run_tool(home, java_home, node, user, ["opensearch-keystore", "add", "--stdin", key],
                      stdin=value + "\n")


def _cluster_health(url: str, nodes: int) -> dict | None:
    try:
        with urllib.request.urlopen(
            f"{url}/_cluster/health?wait_for_nodes={nodes}&wait_for_status=yellow&timeout=2s", timeout=5
        ) as resp:
            return json.loads(resp.read())
    except Exception:  # noqa: BLE001 - any failure (refused, 408 timeout) means "not formed yet"
        return None


def _wait_for_pid(node: ClusterNode, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = node.pid_file.read_text().strip() if node.pid_file.is_file() else ""
        if text.isdigit():
            return int(text)
        time.sleep(0.2)
    raise SesaError(f"{node.name} wrote no pid file at {node.pid_file}")


def stop_stale(config: ClusterConfig) -> list[int]:
    """Kill nodes a previous, interrupted run left behind in the same state folder (their JVM's command
    line names the node's config folder, so nothing else can match). Returns the pids killed."""
    killed = []
    for i in range(config.nodes):
        node = _node(config, i)
        if not node.pid_file.is_file() or not node.pid_file.read_text().strip().isdigit():
            continue
        pid = int(node.pid_file.read_text().strip())
        if pid_runs(pid, str(node.config_dir)):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    deadline = time.monotonic() + 30
    while any(pid_alive(p) for p in killed) and time.monotonic() < deadline:
        time.sleep(0.2)
    return killed


def _node(config: ClusterConfig, i: int) -> ClusterNode:
    name = f"{config.name_prefix}-{i + 1}"
    return ClusterNode(name, config.http_base + i, config.transport_base + i, config.state_dir / name)


def start_cluster(home: Path, java_home: Path, config: ClusterConfig, timeout_s: float = 240,
                  fresh: bool = True) -> Cluster:
    """Configure and start every node, then wait until all of them see a formed cluster of N nodes that is
    yellow or green. On any failure the nodes already started are stopped before the error is raised.
    `fresh` wipes the state folder first (a new cluster every time: no stale cluster UUID or data)."""
    stop_stale(config)
    nodes = [_node(config, i) for i in range(config.nodes)]
    for n in nodes:
        for port, what in ((n.http_port, "HTTP"), (n.transport_port, "transport")):
            if port_in_use(port):
                raise SesaError(f"port {port} ({what} of {n.name}) is already in use by another process")
    user, uid, gid = ensure_node_user()
    if fresh:
        shutil.rmtree(config.state_dir, ignore_errors=True)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        check_traversable(config.state_dir / "x", user)
        check_traversable(home / "x", user)
    started = time.monotonic()
    cluster = Cluster(config, nodes)
    try:
        for n in nodes:
            prepare_node(home, java_home, config, n, nodes, user, uid, gid)
        for n in nodes:
            n.pid_file.unlink(missing_ok=True)
            cmd, env = as_node_user([str(home / "bin" / "opensearch"), "-p", str(n.pid_file)],
                                    _node_env(home, java_home, n), user)
            with open(n.console, "wb") as out:
                n.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          env=env, cwd=str(n.folder), start_new_session=True)
        _wait_formed(nodes, config.nodes, started + timeout_s)
        for n in nodes:
            n.pid = _wait_for_pid(n, 30)
    except BaseException:
        stop_nodes(nodes)
        raise
    cluster.start_seconds = time.monotonic() - started
    return cluster


def _wait_formed(nodes: list[ClusterNode], expected: int, deadline: float) -> None:
    pending = list(nodes)
    while pending:
        for n in list(pending):
            if n.proc is not None and n.proc.poll() is not None:
                raise SesaError(f"{n.name} exited during start-up (code {n.proc.returncode}):\n{_tail(n.console)}")
            health = _cluster_health(n.url, expected)
            if health and health.get("number_of_nodes") == expected and health.get("status") in ("yellow", "green"):
                pending.remove(n)
        if not pending:
            return
        if time.monotonic() > deadline:
            raise SesaError("the cluster did not form in time; "
                            + "; ".join(f"{n.name}: {_tail(n.console, 5)}" for n in pending))
        time.sleep(1.0)


def stop_nodes(nodes: list[ClusterNode], timeout_s: float = 60) -> None:
    """SIGTERM every node at once (a clean shutdown), SIGKILL what is still alive after `timeout_s`."""
    targets: list[tuple[ClusterNode, int]] = []
    for n in nodes:
        pid = n.pid
        if pid is None and n.pid_file.is_file() and n.pid_file.read_text().strip().isdigit():
            pid = int(n.pid_file.read_text().strip())
        if pid is not None and pid_runs(pid, str(n.config_dir)):
            os.kill(pid, signal.SIGTERM)
            targets.append((n, pid))
        elif n.proc is not None and n.proc.poll() is None:  # started, no JVM pid yet: end runuser's group
            os.killpg(n.proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(pid_alive(pid) for _, pid in targets):
        time.sleep(0.3)
    for _, pid in targets:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    for n in nodes:
        if n.proc is not None:
            try:
                n.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(n.proc.pid, signal.SIGKILL)
                n.proc.wait(10)
