"""The committed stubs are exactly what protoc generates from the one .proto."""

from __future__ import annotations

from inference_server.contract import generate
from inference_server.contract import inference_pb2 as pb


def test_committed_stubs_match_a_fresh_generation():
    fresh = generate.generate()
    for name, text in fresh.items():
        committed = (generate.CONTRACT_DIR / name).read_text(encoding="utf-8")
        assert generate.comparable(committed) == generate.comparable(text), (
            f"{name} is stale: run python -m inference_server.contract.generate")


def test_only_the_generator_version_stamp_is_ignored():
    a = "import grpc\nGRPC_GENERATED_VERSION = '1.85.1'\nclass InferenceStub:\n    pass\n"
    assert generate.comparable(a) == generate.comparable(a.replace("1.85.1", "1.85.4"))
    assert generate.comparable(a) != generate.comparable(a.replace("InferenceStub", "OtherStub"))


def test_check_mode_passes():
    assert generate.main(["--check"]) == 0


def test_service_shape():
    svc = pb.DESCRIPTOR.services_by_name["Inference"]
    assert svc.full_name == "sesa.inference.v1.Inference"
    assert [m.name for m in svc.methods] == ["Encode", "Rerank", "Info"]
    assert pb.DESCRIPTOR.name == "sesa/inference/v1/inference.proto"
