"""`runtime.precision: auto` resolves per device, role and the CPU's instruction sets; every fallback is forced
here with a CPU's flags given explicitly (or through SESA_CPU_FLAGS), whatever CPU runs the tests."""

from __future__ import annotations

import pytest

from inference_server.runtime import cpu_features
from inference_server.runtime.backend import BackendError, choose_device
from inference_server.runtime.cpu_features import CpuFeatures, parse_cpuinfo

SAPPHIRE_RAPIDS = CpuFeatures(frozenset({"amx_bf16", "amx_int8", "amx_tile", "avx512_bf16", "avx512_vnni", "avx512f",
                                         "avx2", "fma"}), "test")
ZEN4 = CpuFeatures(frozenset({"avx512_bf16", "avx512_vnni", "avx512f", "avx2", "fma"}), "test")
HASWELL = CpuFeatures(frozenset({"avx2", "fma"}), "test")
BARE = CpuFeatures(frozenset(), "test")


def path(features, role="encoder", openvino=True, precision="auto", engine="auto"):
    c = choose_device("cpu", precision, role=role, engine=engine, features=features, has_openvino=openvino)
    return c.engine, c.precision, c.reason


@pytest.mark.parametrize("features, encoder, reranker", [
    (SAPPHIRE_RAPIDS, ("openvino", "bf16"), ("openvino", "bf16")),
    (ZEN4, ("onnxruntime", "int8"), ("openvino", "bf16")),
    (HASWELL, ("onnxruntime", "int8"), ("onnxruntime", "fp32")),
    (BARE, ("onnxruntime", "fp32"), ("onnxruntime", "fp32")),
])
def test_auto_follows_the_instruction_sets(features, encoder, reranker):
    assert path(features)[:2] == encoder
    assert path(features, role="reranker")[:2] == reranker
    assert features.describe() in path(features)[2] or not features.found  # the reason names what was found


def test_without_openvino_the_bf16_paths_fall_back_to_onnx_runtime_and_say_so():
    engine, precision, reason = path(SAPPHIRE_RAPIDS, openvino=False)
    assert (engine, precision) == ("onnxruntime", "int8") and "OpenVINO is not installed" in reason
    assert path(ZEN4, role="reranker", openvino=False)[:2] == ("onnxruntime", "fp32")


def test_an_explicit_precision_or_engine_wins_and_impossible_ones_are_clear_errors():
    assert path(ZEN4, precision="fp32")[:2] == ("onnxruntime", "fp32")
    assert path(ZEN4, precision="bf16")[:2] == ("openvino", "bf16")
    assert path(ZEN4, precision="int8", role="reranker")[:2] == ("onnxruntime", "int8")
    assert path(HASWELL, engine="openvino")[:2] == ("openvino", "fp32")
    assert path(SAPPHIRE_RAPIDS, engine="onnxruntime")[:2] == ("onnxruntime", "int8")
    with pytest.raises(BackendError, match="fp16 needs a CUDA device"):
        path(ZEN4, precision="fp16")
    with pytest.raises(BackendError, match="bf16 needs bf16 units"):
        path(HASWELL, precision="bf16")
    with pytest.raises(BackendError, match="bf16 runs on OpenVINO"):
        path(ZEN4, precision="bf16", engine="onnxruntime")
    with pytest.raises(BackendError, match="pip install openvino"):
        path(ZEN4, precision="bf16", openvino=False)
    with pytest.raises(BackendError, match="int8 runs on ONNX Runtime"):
        path(ZEN4, precision="int8", engine="openvino")
    with pytest.raises(BackendError, match="pip install openvino"):
        path(ZEN4, engine="openvino", openvino=False)


def test_cpu_flags_come_from_cpuinfo_or_the_override(monkeypatch, tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu avx2 avx512_vnni amx_tile amx_bf16\n\n"
                    "processor\t: 1\nflags\t\t: fpu\n")
    assert parse_cpuinfo(info.read_text()) == {"fpu", "avx2", "avx512_vnni", "amx_tile", "amx_bf16"}
    monkeypatch.delenv(cpu_features.OVERRIDE_ENV, raising=False)
    found = cpu_features.detect(str(info))
    assert found.amx_bf16 and found.bf16_units and found.vnni and not found.avx512_bf16
    assert found.found == ["amx_bf16", "amx_tile", "avx512_vnni", "avx2"]
    monkeypatch.setenv(cpu_features.OVERRIDE_ENV, "avx2")
    assert cpu_features.detect(str(info)).found == ["avx2"]
    monkeypatch.setenv(cpu_features.OVERRIDE_ENV, "none")
    bare = cpu_features.detect(str(info))
    assert bare.found == [] and bare.source == cpu_features.OVERRIDE_ENV
    # choose_device reads the override when no features are given: the forced fallback is what it picks
    c = choose_device("cpu", "auto", has_openvino=True)
    assert (c.engine, c.precision) == ("onnxruntime", "fp32")
    assert cpu_features.detect(str(tmp_path / "missing")).source in (cpu_features.OVERRIDE_ENV,)
    monkeypatch.delenv(cpu_features.OVERRIDE_ENV)
    assert cpu_features.detect(str(tmp_path / "missing")).source == "unknown"
