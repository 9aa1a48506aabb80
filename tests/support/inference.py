"""Helpers for tests and benchmarks: fake backends, tiny real models, an in-thread server.

Why in the package: the unit tests, the e2e test and the benchmark all need the same small
pieces (a deterministic fake model, a tiny random BERT exported to ONNX, a server running
on a background event loop), and other teams' tests may want them too.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from inference_server import paths
from inference_server.config import ServerConfig
from inference_server.runtime.backend import DeviceChoice, ModelBackend
from inference_server.runtime.concept_head import ConceptHead
from inference_server.runtime.encoder import EncoderRuntime, ModelMeta
from inference_server.runtime.loader import Runtimes
from inference_server.runtime.reranker import RerankerRuntime
from inference_server.tokenization import TextTokenizer


class FakeBackend(ModelBackend):
    """Deterministic stand-in for a model: bag-of-token-ids vectors, overlap scores.

    ``delay_s`` per pass simulates compute (to test batching, cancellation, deadlines);
    ``calls`` records the batch sizes it saw.
    """

    def __init__(self, dim: int = 16, delay_s: float = 0.0):
        self.dim = dim
        self.delay_s = delay_s
        self.calls: list[int] = []
        self.device = "cpu (fake)"
        self.providers = ["FakeExecutionProvider"]
        self.precision = "fp32"
        self.gate: threading.Event | None = None  # when set, a pass waits for it

    def _wait(self, n: int) -> None:
        self.calls.append(n)
        if self.gate is not None:
            self.gate.wait(10)
        if self.delay_s:
            time.sleep(self.delay_s)

    def encode(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        ids, mask = batch["input_ids"], batch["attention_mask"]
        self._wait(ids.shape[0])
        out = np.zeros((ids.shape[0], self.dim), dtype=np.float32)
        for i in range(ids.shape[0]):
            for t in ids[i][mask[i] == 1]:
                out[i, int(t) * 7919 % self.dim] += 1.0
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def score(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        ids, mask, types = batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]
        self._wait(ids.shape[0])
        out = np.zeros(ids.shape[0], dtype=np.float32)
        for i in range(ids.shape[0]):
            m = mask[i] == 1
            q = set(ids[i][m & (types[i] == 0)].tolist()) - {101, 102}
            p = set(ids[i][m & (types[i] == 1)].tolist()) - {101, 102}
            out[i] = len(q & p) / max(1, len(q))
        return out


def builtin_tokenizer() -> Path:
    return paths.builtin_encoder_dir() / "tokenizer.json"


def fake_concept_head(dim: int = 16, size: int = 40, seed: int = 0) -> ConceptHead:
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(size, dim)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    return ConceptHead(m, [f"c-{i:03d}" for i in range(size)], [f"concept {i}" for i in range(size)],
                       name="fake-concepts", version="t1")


def fake_runtimes(cfg: ServerConfig, *, dim: int = 16, delay_s: float = 0.0, with_reranker: bool = True,
                  with_concepts: bool = True) -> Runtimes:
    """Runtimes with the real MiniLM tokenizer and fake models (no ONNX, no torch)."""
    tok = TextTokenizer(builtin_tokenizer(), 512)
    enc_meta = ModelMeta("encoder", "fake/encoder", "e1", dim, "fp32", 512, "testing")
    enc = EncoderRuntime(FakeBackend(dim, delay_s), tok, enc_meta, fake_concept_head(dim) if with_concepts else None,
                         cfg.limits.query_max_tokens, cfg.limits.passage_max_tokens)
    rr = None
    if with_reranker:
        rr = RerankerRuntime(FakeBackend(dim, delay_s), tok, ModelMeta("reranker", "fake/reranker", "r1", 0, "fp32",
                                                                       512, "testing"),
                             cfg.rerank.max_tokens, cfg.rerank.query_max_tokens, cfg.rerank.chunk_overlap_tokens)
    return Runtimes(DeviceChoice("cpu", "cpu (fake)", ["FakeExecutionProvider"], "fp32"), enc, rr)


def make_tiny_bert(out_dir: str | Path, classification: bool, seed: int = 0, hidden: int = 32, layers: int = 2) -> Path:
    """A tiny random-initialised BERT (encoder or 1-logit cross-encoder) with the MiniLM tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    torch.manual_seed(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=hidden * 2, max_position_embeddings=512, type_vocab_size=2, num_labels=1)
    model = BertForSequenceClassification(cfg) if classification else BertModel(cfg)
    model.eval().save_pretrained(str(out))
    src = paths.builtin_encoder_dir()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if (src / name).is_file():
            shutil.copy2(src / name, out / name)
    (out / "README.md").write_text("---\nlicense: apache-2.0\n---\nTiny random BERT for tests.\n", encoding="utf-8")
    return out


class ServerThread:
    """Run a SesaServer on its own event loop in a background thread (sync tests, benchmarks)."""

    def __init__(self, cfg: ServerConfig, runtimes: Runtimes | None = None):
        from inference_server.server import SesaServer

        self.server = SesaServer(cfg, runtimes)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="sesa-test-server", daemon=True)

    def __enter__(self) -> "ServerThread":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(120)
        return self

    @property
    def address(self) -> str:
        return f"{self.server.cfg.host}:{self.server.port}"

    def call(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __exit__(self, *exc: Any) -> None:
        try:
            self.call(self.server.stop(0), 30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


def tiny_server_settings(tiny_models, concept_space, **extra) -> dict:
    """Config overrides for a server on ``tiny_models`` (encoder, reranker, their export cache) and a concept
    space, one ONNX thread; ``extra`` adds or replaces settings (dotted keys)."""
    return {"models.encoder": str(tiny_models["encoder_dir"]), "models.reranker": str(tiny_models["reranker_dir"]),
            "models.cache_dir": str(tiny_models["cache"]), "models.concept_space": str(concept_space),
            "runtime.intra_op_threads": 1, **extra}


def build_tiny_concept_space(root, tiny_models):
    """A 5-concept space built with ``tiny_models``' encoder through `sesa-server concepts build` in ``root``;
    returns its dir."""
    import json

    from inference_server.cli import main

    vocab = root / "v.jsonl"
    vocab.write_text("".join(json.dumps({"id": f"ex:{i}", "label": f"concept {i}", "description": f"about {w}"}) + "\n"
                             for i, w in enumerate(["vaccines", "cooking", "music", "software", "law"])))
    space = root / "space"
    rc = main(["concepts", "build", "--vocab", str(vocab), "--out", str(space), "--encoder",
               str(tiny_models["encoder_dir"]), "--cache-dir", str(tiny_models["cache"])])
    if rc != 0:
        raise RuntimeError(f"sesa-server concepts build exited {rc}")
    return space
