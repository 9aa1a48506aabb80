"""Pooled embeddings through the server's own encoder runtime (ONNX), cached on disk.

Why the server's runtime: the concept head is trained on exactly the vectors the server
computes (same tokenizer, truncation at ``query_max_tokens`` / ``passage_max_tokens``, same
ONNX graph), so there is no train/serve skew. Why a cache: 5,183 SciFact abstracts at 256
tokens take minutes on a 2-core CPU; every later run reads them in milliseconds.

Cache key = sha256(encoder version, query/passage, max tokens, texts): a changed text list,
encoder or window gives a new file, never a stale one. Location: ``--cache-dir``, else
``$SESA_TRAINING_CACHE``, else ``$SESA_HOME/training-cache``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inference_server import paths
from model_building.training import TRAINING_CACHE_ENV

log = logging.getLogger(__name__)


def cache_root(cache_dir: str | Path | None = None) -> Path:
    if cache_dir:
        return Path(cache_dir).expanduser()
    env = os.environ.get(TRAINING_CACHE_ENV)
    return Path(env).expanduser() if env else paths.sesa_home() / "training-cache"


def load_server_encoder(encoder: str | None = None) -> Any:
    """The encoder runtime as the server builds it (no concept head attached), in fp32: training data and
    its embedding cache must not depend on the serving precision (int8 is the CPU serving default)."""
    from inference_server.config import load_config
    from inference_server.runtime.loader import load_encoder

    cfg = load_config(None, {"models.encoder": encoder, "runtime.precision": "fp32"})
    return load_encoder(cfg, with_concepts=False)


def texts_key(texts: list[str], encoder_version: str, query: bool, max_tokens: int) -> str:
    h = hashlib.sha256(f"{encoder_version}|{'q' if query else 'p'}|{max_tokens}|{len(texts)}".encode())
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


class EmbeddingCache:
    """``embed(texts, query)`` -> float32 [n, dim], computed once per (encoder, texts, window)."""

    def __init__(self, encoder: Any, cache_dir: str | Path | None = None, show_progress: bool = True):
        self.encoder = encoder
        self.root = cache_root(cache_dir) / "embeddings"
        self.show_progress = show_progress

    @property
    def version(self) -> str:
        return str(self.encoder.meta.version)

    def path_for(self, texts: list[str], query: bool) -> Path:
        key = texts_key(texts, self.version, query, self.encoder.max_tokens(query))
        return self.root / f"{'q' if query else 'p'}-{key[:24]}.npy"

    def embed(self, texts: list[str], query: bool = False, desc: str = "embedding") -> np.ndarray:
        if not texts:
            return np.zeros((0, int(self.encoder.meta.dimension)), dtype=np.float32)
        p = self.path_for(texts, query)
        if p.is_file():
            arr = np.load(p, allow_pickle=False)
            if arr.shape[0] == len(texts):
                return arr
        prog = None
        if self.show_progress:
            from inference_server.progress import progress

            prog = progress(len(texts), desc)
        log.info("%s: embedding %d texts (cached in %s)", desc, len(texts), p)
        arr = np.ascontiguousarray(self.encoder.embed(texts, query=query, progress=prog), dtype=np.float32)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".emb-", suffix=".npy", dir=p.parent)
        os.close(fd)
        np.save(tmp, arr, allow_pickle=False)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600
        os.replace(tmp, p)
        return arr


class QueryEmbeddings:
    """All queries of a dataset embedded once (sorted ids), looked up by id."""

    def __init__(self, ds: Any, cache: EmbeddingCache):
        self.qids = sorted(ds.queries)
        self.index = {q: i for i, q in enumerate(self.qids)}
        self.emb = cache.embed([ds.queries[q] for q in self.qids], query=True, desc=f"{ds.name} queries")

    def __call__(self, qids: Sequence[str]) -> np.ndarray:
        return self.emb[[self.index[q] for q in qids]]
