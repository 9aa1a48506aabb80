"""The reranker's domain bank: is this query like the queries the reranker was validated on?

Why: a cross-encoder trained on one collection (and its blend weight, chosen on held-out queries of
that collection) is only known to help there. Measured on the shipped SciFact reranker, it lowers
Cranfield (aerodynamics questions) a little, and its own scores cannot tell (its top logit is *higher*
on Cranfield than on SciFact). The query's dense embedding can: it is a nearest-neighbour
out-of-distribution test (mean cosine to the k nearest training queries), the threshold a low
percentile of the same score on held-out queries of the training data, so it is set without looking
at any other collection.

Files, next to the reranker's ``model.onnx``: ``domain.npy`` (float16 [n, dim], the training queries'
L2-normalised embeddings from the server's encoder) and a ``domain`` object in ``manifest.json``::

    {"file": "domain.npy", "k": 10, "threshold": 0.29, "percentile": 5, "queries": 688,
     "encoder": "all-MiniLM-L6-v2", "dimension": 384, "reference": "688 SciFact train queries", ...}
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

DOMAIN_FILE = "domain.npy"
REQUIRED_KEYS = ("file", "k", "threshold")


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


@dataclass(frozen=True)
class DomainBank:
    """Training-query embeddings plus the rule that turns a query's similarity into a verdict."""

    bank: np.ndarray  # float32 [n, dim], rows L2-normalised
    k: int
    threshold: float
    encoder: str
    reference: str

    @property
    def dimension(self) -> int:
        return int(self.bank.shape[1])

    def check(self, query_embedding: np.ndarray) -> DomainVerdict:
        sim = float(knn_similarity(normalise(query_embedding), self.bank, self.k)[0])
        return DomainVerdict(similarity=sim, threshold=self.threshold, in_domain=sim >= self.threshold)

    @classmethod
    def from_manifest(cls, model_dir: Path, manifest: dict[str, Any]) -> "DomainBank | None":
        """The bank a model dir's manifest declares, or None when it declares none."""
        spec = manifest.get("domain")
        if spec is None:
            return None
        if not isinstance(spec, dict) or any(key not in spec for key in REQUIRED_KEYS):
            raise DomainBankError(f"{model_dir}/manifest.json: 'domain' must be an object with {list(REQUIRED_KEYS)}")
        k, threshold = spec["k"], spec["threshold"]
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise DomainBankError(f"{model_dir}/manifest.json: domain.k must be an integer >= 1, got {k!r}")
        if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not -1.0 <= threshold <= 1.0:
            raise DomainBankError(f"{model_dir}/manifest.json: domain.threshold must be a cosine in [-1, 1], got {threshold!r}")
        path = model_dir / str(spec["file"])
        if not path.is_file():
            raise DomainBankError(f"{path}: domain bank named in manifest.json not found")
        try:
            bank = np.load(path, allow_pickle=False)
        except Exception as e:  # numpy raises several types for a damaged file
            raise DomainBankError(f"{path}: not a readable .npy array: {e}") from e
        if bank.ndim != 2 or bank.shape[0] < 1 or bank.shape[1] < 1 or not np.isfinite(bank).all():
            raise DomainBankError(f"{path}: expected a finite [queries, dim] array, got shape {bank.shape}")
        return cls(bank=normalise(bank), k=k, threshold=float(threshold), encoder=str(spec.get("encoder", "")),
                   reference=str(spec.get("reference", f"{bank.shape[0]} queries")))

    def fits(self, encoder_id: str, dimension: int) -> str | None:
        """None when the server's encoder can be compared with this bank, else why not."""
        if dimension != self.dimension:
            return f"the bank holds {self.dimension}-d embeddings and the encoder makes {dimension}-d ones"
        if self.encoder and encoder_id and self.encoder != encoder_id:
            return f"the bank was embedded with encoder {self.encoder!r} and the server runs {encoder_id!r}"
        return None


def load_domain_bank(model_dir: Path, manifest: dict[str, Any], encoder_id: str, dimension: int) -> DomainBank | None:
    """The reranker's bank when it has one that fits the encoder; a misfit is logged and ignored (the
    reranker still serves, without domain checks), a damaged bank is an error (the manifest promises it)."""
    bank = DomainBank.from_manifest(model_dir, manifest)
    if bank is None:
        return None
    why = bank.fits(encoder_id, dimension)
    if why is not None:
        log.warning("reranker domain bank in %s ignored: %s; Rerank will not report domain checks", model_dir, why)
        return None
    log.info("reranker domain bank: %s, k %d, threshold %.3f", bank.reference, bank.k, bank.threshold)
    return bank
