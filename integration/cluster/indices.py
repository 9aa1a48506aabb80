"""`sesa index create|list`: SESA indices under any name, correctly mapped, and what each one holds.

Why: the `sesa-*` template only covers indices named that way. An index under another name written through
`sesa_encode` would get dynamic mappings that cannot hold vectors (the plugin refuses to write into it); these
commands create a correctly mapped index on any cluster and show which indices carry SESA fields and their models.

Two layouts, the same fields in the index:

* **pipeline** (no ``--field``): the template's settings and mappings (``title``, ``text``, the ``sesa_*`` fields,
  ``default_pipeline: sesa-ingest``) with the server's dimension and models; identical to a ``sesa-*`` index;
* **field** (``--field NAME`` ...): one ``sesa_text`` field per name. The plugin adds its hidden sub-fields
  (``NAME_sesa_dense`` ...) and encodes documents at ingest without any pipeline.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from .. import schemas
from .errors import SesaError
from .templates import ModelFacts

SESA_TEXT = "sesa_text"


SHIPPED = schemas.SHIPPED


def pipeline_index_body(facts: ModelFacts, chunking: Any = SHIPPED) -> dict[str, Any]:
    """Settings and mappings of a `sesa-*` index (the template's), for an index under any name; its chunking record
    says how its pipeline cuts texts into windows (``SHIPPED``: as the shipped pipeline; None: not at all; else
    ``sesa_encode``'s ``chunking`` option)."""
    template = schemas.index_template(facts.dense_dimension, facts.models_meta())["template"]
    mappings = copy.deepcopy(template["mappings"])
    mappings["_meta"][schemas.conventions()["index_meta_key"]]["chunking"] = schemas.chunking_meta(chunking)
    return {"settings": copy.deepcopy(template["settings"]), "mappings": mappings}


FIRST_WINDOW_ONLY = {"max_windows": 1}


def field_index_body(fields: list[str], concept_space: str | None = None,
                     chunking: Any = SHIPPED) -> dict[str, Any]:
    """An index whose ``fields`` are ``sesa_text`` fields (the plugin maps their sub-fields and encodes them), each
    with the ``chunking`` mapping parameter: ``SHIPPED`` leaves it out (the plugin writes its default, the shipped
    pipeline's option, into a new field); None: the first window only (``{"max_windows": 1}``); else the option."""
    if not fields:
        raise SesaError("name at least one --field")
    bad = [f for f in fields if not f or "." in f or f.startswith("_")]
    if bad:
        raise SesaError(f"field names must be top-level names without dots or a leading underscore: {bad}")
    spec: dict[str, Any] = {"type": SESA_TEXT}
    if concept_space:
        spec["concept_space"] = concept_space
    if chunking != SHIPPED:
        spec["chunking"] = dict(FIRST_WINDOW_ONLY if chunking is None else chunking)
    template_settings = schemas.load_json("index-template.json")["template"]["settings"]
    settings = {k: template_settings[k] for k in ("index.knn", "index.knn.derived_source.enabled",
                                                   "number_of_shards", "auto_expand_replicas")}
    return {"settings": settings,
            "mappings": {"properties": {f: dict(spec) for f in fields}}}


def create_index(client, name: str, facts: ModelFacts | None, fields: list[str] | None = None,
                 concept_space: str | None = None, chunking: Any = SHIPPED) -> dict[str, Any]:
    """Create ``name`` correctly mapped (see the module docstring); refuses an existing index. ``chunking`` (``SHIPPED``:
    the shipped pipeline's option; None: texts not cut into windows; else the option): for the pipeline layout, what
    its chunking record says; for ``sesa_text`` fields, their ``chunking`` parameter (None: the first window only)."""
    if client.indices.exists(index=name):
        raise SesaError(f"index {name!r} already exists: pick another name, or delete it first "
                        f"(its mapping cannot be changed in place)")
    if fields:
        body = field_index_body(fields, concept_space, chunking)
        chunking = body["mappings"]["properties"][fields[0]].get("chunking", schemas.encode_processor().get("chunking"))
        layout = "field"
    else:
        if facts is None:
            raise SesaError("the pipeline layout needs the inference server's dimension and models: pass --server")
        if concept_space:
            raise SesaError("--concept-space applies to --field indices; the pipeline layout uses the server's "
                            "default space")
        chunking = schemas.encode_processor().get("chunking") if chunking == SHIPPED else chunking
        body = pipeline_index_body(facts, chunking)
        layout = "pipeline"
    try:
        client.indices.create(index=name, body=body)
    except Exception as exc:  # noqa: BLE001 - an older plugin: say what is missing
        if "No handler for type" in str(exc) and SESA_TEXT in str(exc):
            raise SesaError(f"the cluster's opensearch-sesa plugin has no {SESA_TEXT} field type (an older "
                            "version): upgrade it on every node, or create the index without --field") from None
        raise
    return {"index": name, "layout": layout, "fields": list(fields or ["title", "text"]),
            "default_pipeline": body["settings"].get("default_pipeline"), "chunking": chunking}


def _prefixes(properties: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Target prefixes with SESA output fields in a mapping, and whether each field is mapped right."""
    suffixes = schemas.conventions()["field_suffixes"]
    wanted = {"dense": "knn_vector", "concepts": "rank_features", "concept_labels": "keyword"}
    found: dict[str, dict[str, Any]] = {}
    for name, spec in properties.items():
        if not name.endswith(suffixes["dense"]):
            continue
        prefix = name[: -len(suffixes["dense"])]
        problems = []
        for role, kind in wanted.items():
            field = prefix + suffixes[role]
            actual = properties.get(field, {}).get("type") or ("object" if "properties" in properties.get(field, {})
                                                               else None)
            if actual != kind:
                problems.append(f"{field} is {actual or 'not mapped'}, not {kind}")
        found[prefix] = {"dimension": spec.get("dimension"), "problems": problems}
    return found


def _window_counts(client, index: str, prefix: str) -> dict[str, int]:
    """Documents of ``prefix`` encoded at all (they have the dense vector) and encoded with windows (they have the
    coverage a chunked encoding writes, one window or more): a gap is documents ingested before chunking was on."""
    suffixes = schemas.conventions()["field_suffixes"]

    def count(field: str) -> int:
        return int(client.count(index=index, body={"query": {"exists": {"field": field}}})["count"])

    return {"encoded": count(prefix + suffixes["dense"]), "with_windows": count(prefix + suffixes["coverage"])}


def deployed_chunking(client) -> Any:
    """The ``chunking`` option of the cluster's ``sesa-ingest`` pipeline (None: it does not chunk), or ``SHIPPED``
    when the pipeline cannot be read (not applied yet, or no permission)."""
    name = schemas.conventions()["default_ingest_pipeline"]
    try:
        pipeline = client.ingest.get_pipeline(id=name)[name]
    except Exception:  # noqa: BLE001 - a listing must not fail on it
        return SHIPPED
    options = schemas.sesa_encode_options(pipeline)
    return None if options is None else options.get("chunking")


def _same_chunking(recorded: Any, option: Any) -> bool:
    """Whether an index's chunking record and a ``chunking`` option cut texts alike (keys left out take the
    option's defaults, as the plugin compares them: the shipped option names every key at those defaults, which a
    plugin test holds it to)."""
    defaults = schemas.encode_processor()["chunking"]
    if recorded == "off" or option is None:
        return recorded == "off" and option is None
    return isinstance(recorded, dict) and {**defaults, **recorded} == {**defaults, **option}


def sesa_indices(client) -> list[dict[str, Any]]:
    """Every index that carries SESA fields: its layout, fields, recorded models and chunking, documents and mapping
    problems, and per target whether the cluster's ``sesa-ingest`` pipeline still cuts texts as the index records."""
    mappings = client.indices.get_mapping(index="*", params={"expand_wildcards": "open"})
    pipeline_chunking = deployed_chunking(client)
    meta_key = schemas.conventions()["index_meta_key"]
    out = []
    for index, body in sorted(mappings.items()):
        if index.startswith("."):
            continue
        mapping = body.get("mappings", {})
        props = mapping.get("properties", {})
        text_fields = sorted(f for f, spec in props.items() if spec.get("type") == SESA_TEXT)
        prefixes = _prefixes(props)
        models = mapping.get("_meta", {}).get(meta_key, {}).get("models", {})
        chunking = mapping.get("_meta", {}).get(meta_key, {}).get("chunking", {})
        if not text_fields and not prefixes and not models:
            continue
        coverage = schemas.conventions()["field_suffixes"]["coverage"]
        for prefix, target in prefixes.items():
            if prefix + coverage in props and not target["problems"]:
                target["windows"] = _window_counts(client, index, prefix)
            if prefix == schemas.conventions()["default_target_prefix"] and prefix in chunking \
                    and pipeline_chunking != SHIPPED:
                target["pipeline_cuts_alike"] = _same_chunking(chunking[prefix], pipeline_chunking)
        # documents as users count them (`_cat/indices` counts each window of a chunked document as one more)
        docs = int(client.count(index=index)["count"])
        out.append({"index": index, "docs": docs, "sesa_text_fields": text_fields,
                    "targets": prefixes, "models": models, "chunking": chunking,
                    "problems": [p for t in prefixes.values() for p in t["problems"]]})
    return out


def format_indices(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no index carries SESA fields (create one with `sesa index create NAME`)"
    lines = []
    for r in rows:
        fields = ", ".join(r["sesa_text_fields"]) or ", ".join(f"{p}_*" for p in r["targets"])
        models = "; ".join(f"{target}: {m.get('dense', m) if isinstance(m, dict) else m}"
                           + (f" + {m['concepts']}" if isinstance(m, dict) and m.get("concepts") else "")
                           for target, m in r["models"].items()) or "no models recorded yet"
        lines.append(f"  {r['index']} ({r['docs']} docs): {fields}; {models}")
        for prefix, target in r["targets"].items():
            if prefix in r.get("chunking", {}):
                cut = r["chunking"][prefix]
                lines.append(f"    {prefix}: sesa_encode must cut texts "
                             + ("into no windows (off)" if cut == "off" else f"with chunking {json.dumps(cut)}"))
                if target.get("pipeline_cuts_alike") is False:
                    lines.append(f"    {prefix}: the cluster's sesa-ingest pipeline cuts texts otherwise, so documents "
                                 f"sent through it are refused: ingest with a pipeline of the index's chunking, or "
                                 f"`POST _reindex` into a new sesa-* index (re-encoded the current way)")
            w = target.get("windows")
            if w and 0 < w["with_windows"] < w["encoded"]:
                lines.append(f"    {prefix}: {w['encoded'] - w['with_windows']} of {w['encoded']} documents were encoded "
                             f"without windows (before chunking was on): they are searched by their first window; "
                             f"`POST _reindex` into a new sesa-* index re-encodes them")
            elif w and w["with_windows"]:
                lines.append(f"    {prefix}: every encoded document has its windows")
        for p in r["problems"]:
            lines.append(f"    BROKEN MAPPING: {p}; documents cannot be encoded into it (recreate it with "
                         f"`sesa index create`)")
    return "\n".join(lines)
