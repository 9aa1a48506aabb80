"""The SESA concept head: a (concepts x dim) matrix and a top-k, nothing else.

Why separate: the rows are normalised embeddings of concept descriptions (zero-shot) or trained
ones, without touching batching, serving or the artifact layout. Weight of concept c for a text
= max(cos(text, row_c), 0); a text keeps its ``k`` strongest concepts above ``min_weight``.

A space whose manifest asks for it (``"assignment": {"pool": "segments", "max_segments": N}``, optionally
``"kinds": ["query"]`` to pool queries only) also
maps each segment of a text (:func:`concept_segments`: items of a list, sentences, lines) and keeps
each concept's strongest weight over the whole text and its segments: one embedding of a list of
skills lands between them, the segments name each one.

Literal evidence (``"assignment": {"literal_boost": b}``): a concept whose label or alias the text
names word for word (:class:`PhraseIndex`) gets ``b`` on top of its weight, and joins the top-k if
that lifts it there: "Python", "Docker" or "bake bread" in a text is evidence no embedding doubts.

The product and top-k run as a tiny ONNX Runtime graph (MatMul -> Relu -> TopK) on the
calling thread: mixing numpy/OpenBLAS threads with ORT's spinning worker threads on a
2-core machine doubled the time of a batch-1 pass. numpy is the fallback.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # runtime imports this module: no import cycle at run time
    from inference_server.runtime.domain import DomainBank

ARTIFACT_MATRIX = "matrix.npy"
ARTIFACT_CONCEPTS = "concepts.jsonl"
ARTIFACT_MANIFEST = "manifest.json"


# Where a text splits into segments for segment pooling: list separators, line breaks, bullets, and sentence ends
# (. ! ? followed by whitespace).
_SEGMENT_BREAK = re.compile(r"\s*(?:[;\n\r\u2022\u00b7]+|(?<=[.!?])\s+)\s*")


def concept_segments(text: str, max_segments: int) -> list[str]:
    """The segments of ``text`` that segment pooling maps on their own (the first ``max_segments`` with a letter or
    digit); [] when the text is one segment, so it costs nothing extra."""
    parts = [p.strip(" \t-*") for p in _SEGMENT_BREAK.split(text)]
    parts = [p for p in parts if any(ch.isalnum() for ch in p)]
    return parts[:max(0, max_segments)] if len(parts) > 1 else []


_WORD = re.compile(r"[a-z0-9+#]+")
# One-word names that are too common to be evidence on their own.
_FUNCTION_WORDS = frozenset("a an the of and or in on for to with by at from as into use using work data".split())


def words(text: str) -> tuple[str, ...]:
    """Lowercase word tokens as literal matching sees them ('C++', 'C#' and 'R' keep their shape)."""
    return tuple(_WORD.findall(text.lower()))


class PhraseIndex:
    """Labels and aliases of a concept space as word tuples -> the concepts they name.

    Left out, so that a match is evidence: names longer than ``max_words``, one-word names shorter than three
    characters or among a few function words, and names shared by more than ``max_concepts`` concepts."""

    def __init__(self, names: list[list[str]], max_words: int = 6, max_concepts: int = 3):
        self.max_words = max_words
        table: dict[tuple[str, ...], set[int]] = {}
        for row, row_names in enumerate(names):
            for name in row_names:
                w = words(name)
                if not w or len(w) > max_words or (len(w) == 1 and (len(w[0]) < 3 or w[0] in _FUNCTION_WORDS)):
                    continue
                table.setdefault(w, set()).add(row)
        self.table = {w: tuple(sorted(rows)) for w, rows in table.items() if len(rows) <= max_concepts}

    def __len__(self) -> int:
        return len(self.table)

    def mentions(self, text: str) -> set[int]:
        """The concepts whose label or alias ``text`` names word for word."""
        w = words(text)
        found: set[int] = set()
        for a in range(len(w)):
            for b in range(a + 1, min(len(w), a + self.max_words) + 1):
                found.update(self.table.get(w[a:b], ()))
        return found


@dataclass(frozen=True)
class ConceptHits:
    """Top concepts of one text: row indices and weights, strongest first, all > 0."""

    indices: np.ndarray  # int64 [<=k]
    weights: np.ndarray  # float32 [<=k]


class ConceptHead:
    def __init__(
        self,
        matrix: np.ndarray,
        keys: list[str],
        labels: list[str],
        *,
        name: str = "custom",
        version: str = "0",
        min_weight: float = 0.0,
        manifest: dict | None = None,
        use_ort: bool = True,
        aliases: list[list[str]] | None = None,
    ):
        if matrix.ndim != 2 or matrix.shape[0] != len(keys) or len(keys) != len(labels):
            raise ValueError(f"concept matrix {matrix.shape} does not match {len(keys)} keys / {len(labels)} labels")
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self._matrix_t = np.ascontiguousarray(self.matrix.T)
        self.keys = keys
        self.labels = labels
        self.name = name
        self.version = version
        self.min_weight = float(min_weight)
        self.manifest = manifest or {}
        self.use_ort = use_ort
        # segment pooling: segments per text mapped beside the whole text (0 = off), from the manifest's assignment
        assignment = self.manifest.get("assignment") or {}
        self.max_segments = int(assignment.get("max_segments", 0)) if assignment.get("pool") == "segments" else 0
        # which texts pool: queries, passages (documents) or both (the default)
        self.segment_kinds = frozenset(assignment.get("kinds") or ("query", "passage"))
        # literal evidence: the boost of a concept the text names (0 = off), over labels and aliases
        self.literal_boost = float(assignment.get("literal_boost", 0.0))
        self.phrases = (PhraseIndex([[lab, *(aliases[i] if aliases else [])] for i, lab in enumerate(labels)])
                        if self.literal_boost > 0 else None)
        # the artifact dir it was loaded from, and its domain bank when it ships one that fits the encoder
        # (set by the loader: the check compares the encoder's query embeddings with the bank)
        self.directory: Path | None = None
        self.domain: DomainBank | None = None
        self._ort: Any = None
        self._ort_lock = threading.Lock()

    def segments_for(self, query: bool) -> int:
        """Segments pooled for a text of this kind (0 = the whole text only)."""
        return self.max_segments if ("query" if query else "passage") in self.segment_kinds else 0

    def with_literal(self, hits: ConceptHits | None, embedding: np.ndarray, text: str, k: int) -> ConceptHits | None:
        """``hits`` with literal evidence: each concept ``text`` names gets ``literal_boost`` on top of its weight
        (its weight in ``hits``, else its own on ``embedding``), and the strongest ``k`` are kept."""
        if self.phrases is None or hits is None or k <= 0:
            return hits
        named = self.phrases.mentions(text)
        if not named:
            return hits
        weight = dict(zip(hits.indices.tolist(), hits.weights.tolist()))
        rows = sorted(named)
        own = np.maximum(self.matrix[rows] @ np.asarray(embedding, dtype=np.float32), 0.0)
        for row, w in zip(rows, own.tolist()):
            weight[row] = weight.get(row, w) + self.literal_boost
        ranked = sorted(weight.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        return ConceptHits(np.array([j for j, _ in ranked], dtype=np.int64),
                           np.array([w for _, w in ranked], dtype=np.float32))

    @property
    def size(self) -> int:
        return self.matrix.shape[0]

    @property
    def dimension(self) -> int:
        return self.matrix.shape[1]

    def weights(self, embeddings: np.ndarray) -> np.ndarray:
        """Dense concept weights max(cos, 0) for L2-normalised embeddings [B, dim] -> [B, N]."""
        s = embeddings.astype(np.float32, copy=False) @ self._matrix_t
        np.maximum(s, 0.0, out=s)
        return s

    def _ort_session(self) -> Any:
        if self._ort is None:
            with self._ort_lock:
                if self._ort is None:
                    self._ort = _build_topk_session(self._matrix_t)
        return self._ort

    def _candidates(self, embeddings: np.ndarray, kmax: int) -> tuple[np.ndarray, np.ndarray]:
        """(values, indices) [B, kmax] of the largest weights, unsorted ties allowed."""
        emb = np.ascontiguousarray(embeddings, dtype=np.float32)
        if self.use_ort:
            try:
                sess = self._ort_session()
            except Exception:  # onnxruntime missing or broken: numpy path
                self.use_ort = False
            else:
                vals, idx = sess.run(None, {"emb": emb, "k": np.array([kmax], dtype=np.int64)})
                return vals, idx
        w = self.weights(emb)
        if kmax < self.size:
            idx = np.argpartition(-w, kmax - 1, axis=1)[:, :kmax]
        else:
            idx = np.tile(np.arange(self.size), (w.shape[0], 1))
        return np.take_along_axis(w, idx, axis=1), idx

    def top_k(self, embeddings: np.ndarray, ks: list[int] | int) -> list[ConceptHits]:
        """Strongest ``k`` concepts per text (``ks`` per row or one k for all); k=0 -> empty."""
        b = embeddings.shape[0]
        ks = [ks] * b if isinstance(ks, int) else list(ks)
        kmax = min(max(ks, default=0), self.size)
        empty = ConceptHits(np.zeros(0, np.int64), np.zeros(0, np.float32))
        if kmax <= 0:
            return [empty] * b
        vals_all, idx_all = self._candidates(embeddings, kmax)
        floor = max(self.min_weight, 0.0)
        out = []
        for i in range(b):
            k = min(ks[i], kmax)
            if k <= 0:
                out.append(empty)
                continue
            idx, vals = idx_all[i], vals_all[i]
            order = np.lexsort((idx, -vals))[:k]  # by weight desc, then index for stable ties
            idx, vals = idx[order], vals[order]
            keep = vals > floor
            out.append(ConceptHits(idx[keep].astype(np.int64), vals[keep].astype(np.float32)))
        return out

    @classmethod
    def load(cls, directory: str | Path, min_weight: float = 0.0, verify: bool = True) -> "ConceptHead":
        """Load a concept-space artifact written by ``concepts.build_concept_space``."""
        d = Path(directory).expanduser()
        mpath = d / ARTIFACT_MANIFEST
        if not mpath.is_file():
            raise FileNotFoundError(f"not a concept-space artifact (no {ARTIFACT_MANIFEST}): {d}")
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
        matrix = np.load(d / manifest.get("matrix_file", ARTIFACT_MATRIX), allow_pickle=False)
        keys, labels, aliases = [], [], []
        with open(d / manifest.get("concepts_file", ARTIFACT_CONCEPTS), encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    keys.append(row["key"])
                    labels.append(row["label"])
                    aliases.append(list(row.get("aliases") or []))
        if verify and manifest.get("matrix_sha256"):
            import hashlib

            got = hashlib.sha256(np.ascontiguousarray(matrix).tobytes()).hexdigest()
            if got != manifest["matrix_sha256"]:
                raise ValueError(f"concept matrix in {d} does not match its manifest sha256 (corrupt artifact?)")
        head = cls(
            matrix,
            keys,
            labels,
            name=manifest.get("name", d.name),
            version=str(manifest.get("version", "0")),
            min_weight=min_weight,
            manifest=manifest,
            aliases=aliases,
        )
        head.directory = d
        return head


def _build_topk_session(matrix_t: np.ndarray) -> Any:
    """ORT session computing TopK(Relu(emb @ M^T), k) on the calling thread only."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    d, n = matrix_t.shape
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["emb", "mt"], ["scores"]),
            helper.make_node("Relu", ["scores"], ["weights"]),
            helper.make_node("TopK", ["weights", "k"], ["values", "indices"], axis=-1, largest=1, sorted=1),
        ],
        "sesa_concept_head",
        [helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["batch", d]),
         helper.make_tensor_value_info("k", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("values", TensorProto.FLOAT, ["batch", "k"]),
         helper.make_tensor_value_info("indices", TensorProto.INT64, ["batch", "k"])],
        [numpy_helper.from_array(np.ascontiguousarray(matrix_t, dtype=np.float32), "mt")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, 8)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
