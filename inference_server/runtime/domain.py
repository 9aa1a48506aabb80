"""Domain banks of the trained models: is this query like the queries the model was validated on?

Why: a model trained on one collection (the reranker and its blend weight, the SESA concept head and
its fusion weight, each chosen on held-out queries of that collection) is only known to help there.
Measured on the shipped SciFact models, both lower Cranfield (aerodynamics questions) a little, and
the reranker's own scores cannot tell (its top logit is *higher* on Cranfield than on SciFact). The
query's dense embedding can: a nearest-neighbour out-of-distribution test (mean cosine to the k
nearest training queries), the threshold a low percentile of the same score on held-out queries of
the training data, so it is set without looking at any other collection.

Why texts, not embeddings: the bank ships the training and held-out query *texts*, and the server
embeds them with the encoder it serves at start-up (a second or two per thousand queries on a CPU).
So the threshold is calibrated on exactly the vectors the server compares (int8 on a CPU, fp16 on a
GPU, or another encoder altogether), with no train/serve skew.

Files, next to the model (``model.onnx`` or ``matrix.npy``): ``domain.json``
(``{"train": [...], "dev": [...]}``) and a ``domain`` object in ``manifest.json``::

    {"file": "domain.json", "k": 10, "percentile": 5, "reference": "688 scifact train queries", ...}
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

DOMAIN_FILE = "domain.json"
REQUIRED_KEYS = ("file", "k", "percentile")

# texts -> float32 [n, dim] query embeddings (the serving encoder, or the training tools' cache)
Embedder = Callable[[list[str]], np.ndarray]


class DomainBankError(ValueError):
    """A domain bank that cannot be used as it is (bad manifest entry or file)."""


@dataclass(frozen=True)
class DomainVerdict:
    similarity: float
    threshold: float
    in_domain: bool


def knn_similarity(queries: np.ndarray, bank: np.ndarray, k: int) -> np.ndarray:
    """Mean cosine of each (L2-normalised) query row to its ``k`` nearest rows of ``bank``."""
    q = np.asarray(queries, dtype=np.float32)
    if q.ndim == 1:
        q = q[None, :]
    sims = q @ np.asarray(bank, dtype=np.float32).T
    k = max(1, min(int(k), sims.shape[1]))
    top = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]
    return top.mean(axis=1)


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def calibrate(train_emb: np.ndarray, dev_emb: np.ndarray, k: int, percentile: float) -> tuple[np.ndarray, float, np.ndarray]:
    """(bank rows, threshold, dev similarities): the threshold is the ``percentile`` of the held-out dev
    queries' mean cosine to their ``k`` nearest train queries."""
    if len(train_emb) == 0 or len(dev_emb) == 0:
        raise DomainBankError(f"a domain bank needs train and held-out dev queries (got {len(train_emb)} train, "
                              f"{len(dev_emb)} dev)")
    if not 0.0 <= percentile <= 50.0:
        raise DomainBankError(f"percentile must be in [0, 50], got {percentile}")
    if k < 1:
        raise DomainBankError(f"k must be >= 1, got {k}")
    bank = normalise(train_emb)
    dev_sims = knn_similarity(normalise(dev_emb), bank, k)
    return bank, float(np.percentile(dev_sims, percentile)), dev_sims


@dataclass(frozen=True)
class DomainBank:
    """Training-query embeddings plus the threshold that turns a query's similarity into a verdict."""

    bank: np.ndarray  # float32 [n, dim], rows L2-normalised
    k: int
    threshold: float
    reference: str

    @property
    def dimension(self) -> int:
        return int(self.bank.shape[1])

    def similarities(self, query_embeddings: np.ndarray) -> np.ndarray:
        """The score of each query row (one query: a 1-d vector gives one score)."""
        return knn_similarity(normalise(query_embeddings), self.bank, self.k)

    def check(self, query_embedding: np.ndarray) -> DomainVerdict:
        sim = float(self.similarities(query_embedding)[0])
        return DomainVerdict(similarity=sim, threshold=self.threshold, in_domain=sim >= self.threshold)

    @classmethod
    def from_manifest(cls, model_dir: Path, manifest: dict[str, Any], embed: Embedder) -> "DomainBank | None":
        """The bank a model dir's manifest declares, embedded and calibrated with ``embed``; None when it
        declares none."""
        spec = manifest.get("domain")
        if spec is None:
            return None
        where = f"{model_dir}/manifest.json"
        if not isinstance(spec, dict) or any(key not in spec for key in REQUIRED_KEYS):
            raise DomainBankError(f"{where}: 'domain' must be an object with {list(REQUIRED_KEYS)}")
        k, pct = spec["k"], spec["percentile"]
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise DomainBankError(f"{where}: domain.k must be an integer >= 1, got {k!r}")
        if not isinstance(pct, (int, float)) or isinstance(pct, bool) or not 0 <= pct <= 50:
            raise DomainBankError(f"{where}: domain.percentile must be a number in [0, 50], got {pct!r}")
        train, dev = read_queries(Path(model_dir) / str(spec["file"]))
        bank, threshold, _ = calibrate(embed(train), embed(dev), k, float(pct))
        return cls(bank=bank, k=k, threshold=threshold,
                   reference=str(spec.get("reference") or f"{len(train)} training queries"))


def read_queries(path: Path) -> tuple[list[str], list[str]]:
    """(train, dev) query texts of a ``domain.json``; a clear error for anything else."""
    if not path.is_file():
        raise DomainBankError(f"{path}: domain bank named in manifest.json not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DomainBankError(f"{path}: not readable JSON: {e}") from e
    out = []
    for key in ("train", "dev"):
        texts = data.get(key) if isinstance(data, dict) else None
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise DomainBankError(f"{path}: '{key}' must be a non-empty list of non-blank query texts")
        out.append(texts)
    return out[0], out[1]


def write_queries(path: Path, train: list[str], dev: list[str]) -> None:
    path.write_text(json.dumps({"train": train, "dev": dev}, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")


def load_domain_bank(model_dir: Path, manifest: dict[str, Any], embed: Embedder) -> DomainBank | None:
    """The model's bank, calibrated on the serving encoder's embeddings; None when the model has none. A bad
    bank is an error: the manifest promises one."""
    bank = DomainBank.from_manifest(model_dir, manifest, embed)
    if bank is not None:
        log.info("domain bank of %s: %s, k %d, threshold %.4f (calibrated on this encoder)", model_dir,
                 bank.reference, bank.k, bank.threshold)
    return bank
