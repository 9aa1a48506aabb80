"""Vocabulary -> concept-space artifact: embed every concept's text with the serving encoder and publish the
matrix, the rows and a manifest atomically (see the package docstring for the layout)."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from inference_server import paths
from inference_server.runtime.concept_head import ARTIFACT_CONCEPTS, ARTIFACT_MANIFEST, ARTIFACT_MATRIX
from model_building.concept_packs.esco import esco_skills_vocab
from model_building.concept_packs.vocabulary import VocabEntry, VocabularyError, load_vocab_jsonl
from model_building.concept_packs.wordnet import wordnet_nouns_vocab

log = logging.getLogger(__name__)


def rows_sha256(entries: Iterable[VocabEntry]) -> str:
    h = hashlib.sha256()
    for e in entries:
        h.update(json.dumps([e.key, e.label, e.embedding_text()], ensure_ascii=False).encode())
    return h.hexdigest()


def build_concept_space(
    entries: list[VocabEntry],
    out_dir: str | Path,
    encoder: Any,
    *,
    name: str,
    version: str | None = None,
    meta: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Embed every concept's text with ``encoder`` (an EncoderRuntime) and write the artifact."""
    if not entries:
        raise VocabularyError("no concepts to build")
    out = Path(out_dir).expanduser()
    t0 = time.perf_counter()
    matrix = encoder.embed([e.embedding_text() for e in entries], query=False, progress=progress)
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix /= np.maximum(norms, 1e-12)
    matrix_sha = hashlib.sha256(matrix.tobytes()).hexdigest()
    rows_sha = rows_sha256(entries)
    emeta = encoder.meta
    version = version or f"{(meta or {}).get('source_version', '1')}-{hashlib.sha256((matrix_sha + rows_sha).encode()).hexdigest()[:10]}"
    manifest = {
        "format_version": 1,
        "kind": "zero-shot",
        "name": name,
        "version": version,
        "size": len(entries),
        "dimension": int(matrix.shape[1]),
        "matrix_file": ARTIFACT_MATRIX,
        "concepts_file": ARTIFACT_CONCEPTS,
        "matrix_sha256": matrix_sha,
        "concepts_sha256": rows_sha,
        "encoder": {"id": emeta.model_id, "version": emeta.version, "source": emeta.source},
        "text_max_tokens": encoder.passage_max_tokens,
        "weight": "max(cos(text, concept), 0), top-k per text",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(time.perf_counter() - t0, 2),
        **(meta or {}),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        np.save(tmp / ARTIFACT_MATRIX, matrix, allow_pickle=False)
        with open(tmp / ARTIFACT_CONCEPTS, "w", encoding="utf-8") as f:
            for e in entries:
                f.write(json.dumps({"key": e.key, "id": e.id, "label": e.label, "parent": e.parent,
                                    "aliases": e.aliases, "description": e.description}, ensure_ascii=False) + "\n")
        (tmp / ARTIFACT_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        paths.publish_dir(tmp, out)  # 0755/0644: the server may run as another user
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("built concept space %s %s: %d concepts in %.1fs -> %s", name, version, len(entries),
             time.perf_counter() - t0, out)
    return out


def load_vocabulary(spec: str, limit: int | None = None, key_prefix: str = "") -> tuple[list[VocabEntry], dict[str, Any], str]:
    """(entries, metadata, default name) for a built-in pack name or a JSONL file."""
    if spec == "esco-skills":
        entries, meta = esco_skills_vocab(limit)
        return entries, meta, "esco-skills"
    if spec == "wordnet-nouns":
        entries, meta = wordnet_nouns_vocab(limit)
        return entries, meta, "wordnet-nouns"
    entries = load_vocab_jsonl(spec, key_prefix=key_prefix, limit=limit)
    p = Path(spec).expanduser()
    meta = {"source": str(p), "source_sha256": paths.sha256_file(p), "licence": "as given by the vocabulary"}
    return entries, meta, p.stem
