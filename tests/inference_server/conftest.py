"""Shared fixtures: configs, an in-thread server with fake models, tiny real models (torch)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import grpc
import pytest

from inference_server.config import load_config
from inference_server.contract import inference_pb2_grpc as pb2_grpc
from tests.support.inference import ServerThread, fake_runtimes

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

HAS_TORCH = importlib.util.find_spec("torch") is not None and importlib.util.find_spec("transformers") is not None


def make_cfg(**overrides):
    base = {"port": 0, "metrics.port": 0, "models.concept_space": "none", "auth.token_env": None}
    base.update(overrides)
    return load_config(overrides=base, environ={})


@pytest.fixture
def cfg_factory():
    return make_cfg


@pytest.fixture(scope="module")
def cfg_factory_module():
    return make_cfg


@pytest.fixture(scope="module")
def fake_server():
    cfg = make_cfg()
    with ServerThread(cfg, fake_runtimes(cfg)) as st:
        yield st


@pytest.fixture(scope="module")
def stub(fake_server):
    ch = grpc.insecure_channel(fake_server.address, options=[("grpc.max_send_message_length", 64 << 20)])
    yield pb2_grpc.InferenceStub(ch)
    ch.close()


@pytest.fixture(scope="session")
def tiny_models_session(tmp_path_factory):
    """A tiny random BERT encoder and cross-encoder, exported to ONNX in a temp cache."""
    if not HAS_TORCH:
        pytest.skip("torch/transformers not installed (pip install '.[train]'): cannot build tiny models")
    from model_building.export import export_hf_dir
    from tests.support.inference import make_tiny_bert

    root = tmp_path_factory.mktemp("tiny")
    enc_dir = make_tiny_bert(root / "tiny-encoder", classification=False, seed=1)
    rr_dir = make_tiny_bert(root / "tiny-reranker", classification=True, seed=2)
    cache = root / "cache"
    enc = export_hf_dir(enc_dir, "encoder", cache)
    rr = export_hf_dir(rr_dir, "reranker", cache)
    return {"encoder_dir": enc_dir, "reranker_dir": rr_dir, "cache": cache, "encoder": enc, "reranker": rr,
            "root": Path(root)}


@pytest.fixture(scope="session")
def tiny_models(tiny_models_session):
    return tiny_models_session
