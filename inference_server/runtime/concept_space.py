"""Which concept space the server loads: an artifact dir, or a built-in pack from the cache.

A built-in pack's artifact is keyed by the encoder's version and the pack's revision, so a new encoder or a
changed pack is rebuilt, never served stale. Building (embedding a vocabulary) is model building's job
(``model_building.concept_packs``); the server calls it only when a built-in pack is missing from the cache and
``models.build_missing_concepts`` allows it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from inference_server import paths
from inference_server.runtime.concept_head import ARTIFACT_MANIFEST, ConceptHead

log = logging.getLogger(__name__)

BUILTIN_PACKS = ("esco-skills", "wordnet-nouns")
# Bump a pack's revision when its rows or labels change, so cached artifacts are rebuilt.
PACK_REVISIONS = {"esco-skills": 3, "wordnet-nouns": 1}


def builtin_artifact_dir(pack: str, encoder_version: str, limit: int | None = None) -> Path:
    suffix = f"-limit{limit}" if limit else ""
    rev = PACK_REVISIONS[pack]
    return paths.concepts_cache() / pack / f"enc-{encoder_version}-r{rev}{suffix}"


def resolve_concept_space(
    spec: str | None,
    encoder: Any,
    *,
    min_weight: float = 0.0,
    build_missing: bool = True,
    progress_factory: Callable[[int, str], Callable[[int], None]] | None = None,
) -> ConceptHead | None:
    """Load the configured concept space: an artifact dir, or a built-in pack (cached build)."""
    if spec is None:
        return None
    if spec in BUILTIN_PACKS:
        d = builtin_artifact_dir(spec, encoder.meta.version)
        if not (d / ARTIFACT_MANIFEST).is_file():
            if not build_missing:
                raise FileNotFoundError(
                    f"concept space {spec} is not built for this encoder: run `sesa-server concepts build --vocab {spec}`"
                )
            from model_building.concept_packs.build import build_concept_space, load_vocabulary

            entries, meta, name = load_vocabulary(spec)
            log.warning("building concept space %s (%d concepts) once; cached in %s", spec, len(entries), d)
            prog = progress_factory(len(entries), f"concepts {spec}") if progress_factory else None
            build_concept_space(entries, d, encoder, name=name, meta=meta, progress=prog)
        return ConceptHead.load(d, min_weight=min_weight)
    p = Path(spec).expanduser()
    if not (p / ARTIFACT_MANIFEST).is_file():
        raise FileNotFoundError(
            f"concept space {spec!r} is neither a built-in pack ({', '.join(BUILTIN_PACKS)}) nor an artifact dir "
            f"with {ARTIFACT_MANIFEST}"
        )
    head = ConceptHead.load(p, min_weight=min_weight)
    enc = head.manifest.get("encoder", {})
    if enc.get("version") and enc.get("version") != encoder.meta.version:
        log.warning(
            "concept space %s was built with encoder %s@%s but the server runs %s@%s; weights may be off",
            head.name, enc.get("id"), enc.get("version"), encoder.meta.model_id, encoder.meta.version,
        )
    return head
