"""Search modes: one function turns (mode, query text) into the request sent to `_search`.

- `bm25`: a plain `multi_match` over `title` and `text` — OpenSearch's own BM25, no search pipeline.
- `bm25+dense`: the comparison a user makes first: the plain BM25 + k-NN hybrid they could configure themselves
  (the pipeline's hybrid with min-max 0.5 / 0.5 and the concept branch at 0, set in the request).
- `dense`, `concepts`, `hybrid`, `hybrid+rerank`: the `sesa-search` pipeline with the query in `ext.sesa`
  (schemas/README.md), built by `integration.search.search_body` (the same builder as `sesa search`); the
  pipeline's processor settings (and the index's evidence record, if `sesa tune` wrote one) decide the rest,
  the request only picks the mode and asks for rerank.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import schemas

MODES: tuple[str, ...] = ("bm25", "bm25+dense", "dense", "concepts", "hybrid", "hybrid+rerank")
BASELINE = "bm25"
PLAIN_HYBRID = "bm25+dense"
# The plain BM25 + dense hybrid: min-max, equal weights, no concept score (ir.fusion's rules, the plugin's sesa_fuse).
PLAIN_FUSION: dict[str, Any] = {"technique": "min_max", "weights": {"bm25": 0.5, "dense": 0.5, "concepts": 0.0}}
DEFAULT_SIZE = 100  # Recall@100 needs the top 100

TEXT_FIELDS = ("title", "text")
# BEIR's lexical baseline (beir.retrieval.search.lexical.ElasticSearch): best_fields, tie_breaker 0.5.
BM25_MULTI_MATCH = {"type": "best_fields", "tie_breaker": 0.5}
BM25_SOURCE = (
    "BEIR's Elasticsearch BM25 baseline (beir/retrieval/search/lexical/elastic_search.py): multi_match "
    "best_fields over title and text with tie_breaker 0.5; similarity = OpenSearch's default BM25 "
    "(k1 1.2, b 0.75), analyzer from the index mapping"
)


@dataclass(frozen=True)
class ModeSpec:
    name: str
    pipeline_mode: str | None  # ext.sesa.mode; None: no search pipeline
    rerank: bool = False
    needs_fields: tuple[str, ...] = field(default=())  # sesa field roles the index must map
    fusion: dict[str, Any] | None = None  # ext.sesa.fusion this mode always sends

    @property
    def uses_pipeline(self) -> bool:
        return self.pipeline_mode is not None


def _specs() -> dict[str, ModeSpec]:
    return {
        "bm25": ModeSpec("bm25", None),
        "bm25+dense": ModeSpec("bm25+dense", "hybrid", False, ("dense",), PLAIN_FUSION),
        "dense": ModeSpec("dense", "dense", False, ("dense",)),
        "concepts": ModeSpec("concepts", "concepts", False, ("concepts",)),
        "hybrid": ModeSpec("hybrid", "hybrid", False, ("dense", "concepts")),
        "hybrid+rerank": ModeSpec("hybrid+rerank", "hybrid", True, ("dense", "concepts")),
    }


def spec(mode: str) -> ModeSpec:
    specs = _specs()
    if mode not in specs:
        raise ValueError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")
    return specs[mode]


def parse_modes(text: str) -> list[str]:
    """'bm25, hybrid' -> ['bm25', 'hybrid'], validated, order kept, duplicates dropped."""
    out: list[str] = []
    for part in text.split(","):
        name = part.strip()
        if not name:
            continue
        spec(name)
        if name not in out:
            out.append(name)
    if not out:
        raise ValueError("no modes given")
    return out


def search_pipeline_name() -> str:
    return schemas.conventions()["default_search_pipeline"]


@dataclass(frozen=True)
class SearchRequest:
    body: dict[str, Any]
    params: dict[str, str]


def parse_fusion_weights(text: str) -> dict[str, float]:
    """``bm25=0.425,dense=0.425,concepts=0.15`` -> weights for ``ext.sesa.fusion.weights``; a branch left
    out gets 0 (as in ``sesa_fuse``)."""
    branches = ("bm25", "dense", "concepts")
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in branches:
            raise ValueError(f"fusion weight {part!r}: write BRANCH=WEIGHT with BRANCH one of {', '.join(branches)}")
        if name in out:
            raise ValueError(f"fusion weight for {name} given twice")
        try:
            w = float(value)
        except ValueError:
            raise ValueError(f"fusion weight {part!r}: {value!r} is not a number") from None
        if not w >= 0 or w == float("inf"):
            raise ValueError(f"fusion weight {part!r}: must be a finite number >= 0")
        out[name] = w
    if sum(out.values()) <= 0:
        raise ValueError("fusion weights: at least one must be > 0")
    return {b: out.get(b, 0.0) for b in branches}


def request(mode: str, query_text: str, size: int = DEFAULT_SIZE,
            fusion_weights: dict[str, float] | None = None) -> SearchRequest:
    """The `_search` request of a mode for one query (``fusion_weights``: override the pipeline's for the
    modes that fuse)."""
    s = spec(mode)
    if not s.uses_pipeline:
        body = {
            "size": size,
            "_source": False,
            "query": {"multi_match": {"query": query_text, "fields": list(TEXT_FIELDS), **BM25_MULTI_MATCH}},
        }
        return SearchRequest(body=body, params={})
    from ..search import search_body  # the request builder of `sesa search`: one code path for every tool

    fusion = s.fusion or ({"weights": fusion_weights} if fusion_weights and s.pipeline_mode == "hybrid" else None)
    body = search_body(query_text, mode=s.pipeline_mode, size=size, rerank=s.rerank, explain=False,
                       source_fields=list(TEXT_FIELDS), fusion=fusion)
    return SearchRequest(body=body, params={"search_pipeline": search_pipeline_name()})


def describe(mode: str) -> dict[str, Any]:
    """What a mode sends, for the report (with the query text elided)."""
    example = request(mode, "<query text>")
    return {"body": example.body, "params": example.params}
