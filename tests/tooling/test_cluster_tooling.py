"""Unit tests of the embedded-stack tooling that need no running node."""

from __future__ import annotations

import os
import socket
import stat
import sys
import time
import zipfile
from pathlib import Path

import pytest

from integration.cli import main
from integration.cluster import assembly, java, maven, node
from integration.cluster.errors import SesaError
from integration.cluster.paths import StatePaths


def test_artifact_path_follows_the_maven_layout(monkeypatch, tmp_path):
    monkeypatch.setenv("SESA_MAVEN_REPO", str(tmp_path))
    path = maven.artifact_path("org.opensearch.plugin:opensearch-knn:3.5.0.0:zip")
    assert path == tmp_path / "org/opensearch/plugin/opensearch-knn/3.5.0.0/opensearch-knn-3.5.0.0.zip"
    assert maven.artifact_path("a.b:c:1").name == "c-1.jar"
    with pytest.raises(ValueError):
        maven.artifact_path("just-a-name")


def test_unzip_keeps_the_executable_bit_and_refuses_path_traversal(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("pkg/bin/tool")
        info.external_attr = (stat.S_IFREG | 0o755) << 16
        zf.writestr(info, "#!/bin/sh\n")
    out = tmp_path / "out"
    out.mkdir()
    assembly.unzip_preserving_modes(archive, out)
    assert os.access(out / "pkg/bin/tool", os.X_OK)
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape.txt", "x")
    with pytest.raises(SesaError):
        assembly.unzip_preserving_modes(evil, out)


def test_java_major_reads_a_fake_jdk(tmp_path):
    bin_dir = tmp_path / "jdk" / "bin"
    bin_dir.mkdir(parents=True)
    exe = bin_dir / "java"
    exe.write_text('#!/bin/sh\necho \'openjdk version "25.0.1" 2025-10-21\' >&2\n')
    exe.chmod(0o755)
    assert java.java_major(tmp_path / "jdk") == 25
    assert java.java_major(tmp_path / "nothing") is None


def test_a_too_old_opensearch_java_home_is_a_clear_error(monkeypatch, tmp_path):
    bin_dir = tmp_path / "jdk17" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "java").write_text('#!/bin/sh\necho \'openjdk version "17.0.15"\' >&2\n')
    (bin_dir / "java").chmod(0o755)
    monkeypatch.setenv("OPENSEARCH_JAVA_HOME", str(tmp_path / "jdk17"))
    with pytest.raises(SesaError, match="Java 21"):
        java.find_java_home()


def test_node_config_pins_loopback_single_node_and_our_endpoints(tmp_path):
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "plugins" / "opensearch-sesa").mkdir(parents=True)
    paths = StatePaths(tmp_path / "state")
    cfg = node.NodeConfig(http_port=9299, transport_port=9399, heap="512m",
                          inference_endpoints=("127.0.0.1:1", "127.0.0.1:2"))
    node.configure(home, cfg, paths)
    yml = (home / "config" / "opensearch.yml").read_text()
    assert "network.host: 127.0.0.1" in yml
    assert "discovery.type: single-node" in yml
    assert "http.port: 9299" in yml and "transport.port: 9399" in yml
    assert 'sesa.inference.endpoints: ["127.0.0.1:1", "127.0.0.1:2"]' in yml
    heap = (home / "config" / "jvm.options.d" / "sesa-heap.options").read_text()
    assert heap.split() == ["-Xms512m", "-Xmx512m"]


def test_node_start_refuses_a_busy_port_with_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SESA_HOME", str(tmp_path))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(SesaError, match=f"port {port}.*in use") as err:
            node.start(tmp_path, Path("/nonexistent"), node.NodeConfig(http_port=port, transport_port=port + 1),
                       StatePaths(tmp_path))
        assert "\n" not in str(err.value)


def test_cli_prints_one_line_errors_and_exits_non_zero(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SESA_HOME", str(tmp_path))
    monkeypatch.setenv("OPENSEARCH_JAVA_HOME", str(tmp_path / "no-jdk"))
    code = main(["up", "--no-server", "--plugin-zip", str(tmp_path / "missing.zip")])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.startswith("sesa: error:") and "Java 21" in err and "\n" not in err


def test_status_reports_down_without_crashing(tmp_path, monkeypatch):
    from integration.cluster import stack

    monkeypatch.setenv("SESA_HOME", str(tmp_path))
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    result = stack.status(StatePaths(tmp_path), server_address=f"127.0.0.1:{port}")
    assert result["node"] == {"status": "down"}
    assert result["inference_server"]["health"] == "UNREACHABLE"


FAKE_SERVER = """
import signal, sys, time
args = sys.argv[1:]
assert args[0] == "serve"
if "--ignore-term" in args:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("fake server", *args, flush=True)
if "--exit" in args:
    sys.exit(3)
if "--ready" in args:
    open(args[args.index("--ready-file") + 1], "w").write("4321\\n0\\n")
time.sleep(60)
"""


def _fake_server(tmp_path: Path, *args: str, ready: bool = True):
    from integration.cluster.server_process import SpawnedServer

    script = tmp_path / "fake_server.py"
    script.write_text(FAKE_SERVER)
    return SpawnedServer(list(args), tmp_path / "server.log", dict(os.environ),
                         ready_file=tmp_path / "server.ready" if ready else None,
                         executable=[sys.executable, str(script)])


def test_server_env_is_offline_and_drops_stray_server_settings_when_isolated(monkeypatch):
    from integration.cluster.server_process import server_env

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("SESA_SERVER_TOKEN", "from-the-shell")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("SESA_HOME", raising=False)
    env = server_env({"SESA_SERVER_PORT": "1"}, isolated=True)
    assert env["HF_HUB_OFFLINE"] == env["TRANSFORMERS_OFFLINE"] == "1"
    assert "SESA_SERVER_TOKEN" not in env and env["SESA_SERVER_PORT"] == "1"
    daemon = server_env(defaults={"SESA_HOME": "/h", "SESA_SERVER_TOKEN": "default"}, force_offline=False)
    assert daemon["HF_HUB_OFFLINE"] == "0" and daemon["TRANSFORMERS_OFFLINE"] == "1"  # the shell's say wins
    assert daemon["SESA_HOME"] == "/h" and daemon["SESA_SERVER_TOKEN"] == "from-the-shell"


def test_spawned_server_reports_the_ports_of_its_ready_file_and_stops(tmp_path):
    srv = _fake_server(tmp_path, "--ready")
    assert srv.wait_ready(30) == (4321, 0) and srv.alive()
    assert "fake server serve --ready --ready-file" in srv.log.read_text()
    srv.stop()
    assert not srv.alive() and srv.proc.returncode == -15


def test_spawned_server_that_exits_or_never_gets_ready_is_not_ready(tmp_path):
    from integration.cluster.server_process import ServerNotReady

    with pytest.raises(ServerNotReady) as err:
        _fake_server(tmp_path, "--exit").wait_ready(30)
    assert err.value.returncode == 3
    srv = _fake_server(tmp_path)
    with pytest.raises(ServerNotReady) as err:
        srv.wait_ready(0.5)
    assert err.value.returncode is None and not srv.alive()  # stopped after the timeout


def test_terminate_kills_what_ignores_sigterm(tmp_path):
    from integration.cluster.server_process import terminate

    srv = _fake_server(tmp_path, "--ignore-term", ready=False)
    deadline = time.monotonic() + 30
    while "fake server" not in srv.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    terminate(srv.pid, 0.5, group=True)
    assert srv.proc.wait(10) == -9


def test_status_shows_what_runs_each_model_and_why(tmp_path, monkeypatch, capsys):
    """`sesa status` reads the server's Info: device, the CPU's instruction sets, engine/precision/reason."""
    from integration.cluster import stack
    from tests.inference_server.conftest import make_cfg
    from tests.support.inference import ServerThread, fake_runtimes

    monkeypatch.setenv("SESA_HOME", str(tmp_path))
    cfg = make_cfg()
    rt = fake_runtimes(cfg)
    rt.encoder.meta.reason = "VNNI found (avx512_vnni): ONNX Runtime dynamic int8, one sequence per call"
    with ServerThread(cfg, rt) as st:
        result = stack.status(StatePaths(tmp_path), server_address=st.address)
        assert main(["status", "--server", st.address]) == 3  # the node is down; the server part still prints
    runtime = result["inference_server"]["runtime"]
    encoder = next(m for m in runtime["models"] if m["role"] == "encoder")
    assert encoder == {"role": "encoder", "id": "fake/encoder", "engine": "onnxruntime", "precision": "fp32",
                       "why": rt.encoder.meta.reason}
    from inference_server.runtime import cpu_features

    assert runtime["cpu_features"] == cpu_features.detect().found
    assert f"encoder fake/encoder: onnxruntime fp32 ({rt.encoder.meta.reason})" in capsys.readouterr().out
