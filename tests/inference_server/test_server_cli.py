"""The sesa-server CLI: config show, one-line errors, export cache, concepts build, info."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from inference_server.cli import main


def test_config_show_redacts_the_token(capsys, monkeypatch):
    monkeypatch.setenv("SESA_SERVER_TOKEN", "super-secret-value")
    assert main(["config", "show", "--format", "json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)
    assert "super-secret-value" not in out and data["auth"]["enabled"] is True
    assert data["port"] == 50051 and data["batching"]["max_batch_tokens"] == 1024


def test_bad_config_is_one_line_exit_2(tmp_path, capsys):
    f = tmp_path / "c.yaml"
    f.write_text("batching:\n  max_batch_size: -3\n")
    assert main(["config", "show", "--config", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("sesa-server: error: invalid config in") and "batching.max_batch_size" in err


def test_serve_with_missing_model_is_one_line(tmp_path, capsys):
    assert main(["serve", "--encoder", str(tmp_path / "missing.onnx"), "--port", "0", "--no-metrics"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the start-up log lines
    assert last.startswith("sesa-server: error: encoder ONNX file not found")


def test_info_against_a_running_server(fake_server, capsys):
    assert main(["info", "--address", fake_server.address]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["health"] == "SERVING" and out["info"]["models"][0]["role"] == "encoder"


def test_info_unreachable(capsys):
    assert main(["info", "--address", "127.0.0.1:1", "--timeout", "1"]) == 1
    assert "sesa-server: error: 127.0.0.1:1: UNAVAILABLE" in capsys.readouterr().err


def test_console_script_module_entry():
    r = subprocess.run([sys.executable, "-m", "inference_server", "--version"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "sesa-server" in r.stdout


def test_export_is_cached(tiny_models, capsys):
    args = ["export", "--encoder", str(tiny_models["encoder_dir"]), "--reranker", str(tiny_models["reranker_dir"]),
            "--cache-dir", str(tiny_models["cache"])]
    assert main(args) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["role"] for x in lines] == ["encoder", "reranker"]
    assert lines[0]["onnx"] == str(tiny_models["encoder"].onnx_path) and len(lines[0]["sha256"]) == 64


def test_concepts_build_with_limit(tiny_models, tmp_path, capsys):
    vocab = tmp_path / "v.jsonl"
    vocab.write_text("".join(json.dumps({"id": f"x{i}", "label": f"L{i}"}) + "\n" for i in range(10)))
    out = tmp_path / "space"
    assert main(["concepts", "build", "--vocab", str(vocab), "--out", str(out), "--limit", "4", "--version", "v7",
                 "--encoder", str(tiny_models["encoder_dir"]), "--cache-dir", str(tiny_models["cache"])]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["size"] == 4 and res["version"] == "v7" and res["dimension"] == 32
    man = json.loads((out / "manifest.json").read_text())
    assert man["name"] == "v" and man["encoder"]["version"] == tiny_models["encoder"].version
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{}\n")
    assert main(["concepts", "build", "--vocab", str(bad), "--out", str(out)]) == 2
    assert "missing or empty 'id'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_models(request):
    pytest.importorskip("torch", reason="torch not installed (pip install '.[train]'): export needs it")
    return request.getfixturevalue("tiny_models_session")
