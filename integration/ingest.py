"""`sesa ingest DATASET_DIR --index NAME`: stream a BEIR corpus into an index through the bulk API.

- An index whose name matches the template pattern (`sesa-*`) is created by the index template, so its
  documents go through the `sesa-ingest` pipeline (dense vector, concepts, labels, model, status).
  Any other name gets an index with the template's own `title`/`text` mappings only (BM25 baselines).
- `--pipeline NAME` sends every bulk request through that ingest pipeline; `--pipeline _none` bypasses
  the index's default pipeline.
- Re-running is cheap: ids already in the index are skipped. When the index maps the `sesa_status` field
  (and a pipeline runs), only documents that HAVE a status count as present, so documents indexed
  without vectors are sent again.
- Failures never stop the stream: they are counted, grouped by reason (with example ids) and make the
  command exit with status 2.
"""

from __future__ import annotations

import fnmatch
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from ir.beir import Dataset, Document

from . import schemas
from .cluster.errors import SesaError

NO_PIPELINE = "_none"
EXIT_FAILED_DOCS = 2
MAX_EXAMPLES = 3
DEFAULT_BATCH_SIZE = 200
DEFAULT_REQUEST_TIMEOUT_S = 300


# ------------------------------------------------------------------------------------------------------
# Result


@dataclass
class FailureGroup:
    count: int = 0
    examples: list[str] = field(default_factory=list)


@dataclass
class IngestResult:
    """What one ingest run did; `to_dict()` is JSON-ready for reports and benchmarks."""

    dataset: str
    index: str
    pipeline: str | None  # None: the index's default pipeline
    corpus_documents: int = 0  # distinct ids in the corpus
    already_present: int = 0  # skipped because the index already had them
    duplicates_in_corpus: int = 0
    attempted: int = 0
    indexed: int = 0
    failed: int = 0
    failures: dict[str, FailureGroup] = field(default_factory=dict)
    seconds: float = 0.0
    created_index: bool = False
    require_status: bool = False

    @property
    def ok(self) -> bool:
        return self.failed == 0

    @property
    def docs_per_s(self) -> float:
        return self.indexed / self.seconds if self.seconds > 0 else 0.0

    def record_failure(self, reason: str, doc_id: str) -> None:
        self.failed += 1
        group = self.failures.setdefault(reason, FailureGroup())
        group.count += 1
        if len(group.examples) < MAX_EXAMPLES:
            group.examples.append(doc_id)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        out["docs_per_s"] = round(self.docs_per_s, 2)
        out["seconds"] = round(self.seconds, 2)
        return out

    def summary(self) -> str:
        pipeline = "index default" if self.pipeline is None else self.pipeline
        lines = [
            f"ingest {self.dataset} -> {self.index} (pipeline: {pipeline})",
            f"  corpus documents: {self.corpus_documents}"
            + (f" ({self.duplicates_in_corpus} duplicate ids ignored)" if self.duplicates_in_corpus else ""),
            f"  already present:  {self.already_present}"
            + (" (counted only with a sesa status)" if self.require_status else ""),
            f"  indexed:          {self.indexed}",
            f"  failed:           {self.failed}",
            f"  seconds:          {self.seconds:.1f} ({self.docs_per_s:.1f} docs/s)",
        ]
        for reason, group in sorted(self.failures.items(), key=lambda kv: -kv[1].count):
            lines.append(f"  - {group.count} x {reason}")
            lines.append(f"      e.g. ids {', '.join(group.examples)}")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------
# Cluster helpers


def resolve_cluster_url(url: str | None = None) -> str:
    """--cluster, else SESA_CLUSTER_URL, else the node `sesa up` started (SESA_HOME), else localhost:9200."""
    if url:
        return url.rstrip("/")
    if os.environ.get("SESA_CLUSTER_URL"):
        return os.environ["SESA_CLUSTER_URL"].rstrip("/")
    try:
        from .cluster import node
        from .cluster.paths import state_paths

        state = node.running_node(state_paths())
        if state:
            return state.url
    except Exception:  # noqa: BLE001 - fall back to the default port
        pass
    return "http://127.0.0.1:9200"


def matches_template(index: str) -> bool:
    return fnmatch.fnmatchcase(index, schemas.conventions()["default_index_pattern"])


def plain_index_body() -> dict[str, Any]:
    """Settings and mappings of an index outside the template: the template's text fields (same analyzer),
    one shard, so BM25 figures are comparable with those of a `sesa-*` index."""
    template = schemas.load_json("index-template.json")["template"]
    props = template["mappings"]["properties"]
    return {
        "settings": {"number_of_shards": 1, "auto_expand_replicas": "0-1"},
        "mappings": {"properties": {name: props[name] for name in ("title", "text")}},
    }


def ensure_index(client, index: str, fresh: bool = False) -> bool:
    """Create the index if needed (deleting it first with `fresh`); True when it was created here."""
    exists = client.indices.exists(index=index)
    if exists and fresh:
        client.indices.delete(index=index)
        exists = False
    if exists:
        return False
    if matches_template(index):
        client.indices.create(index=index)  # the composable template supplies settings and mappings
    else:
        client.indices.create(index=index, body=plain_index_body())
    return True


def mapped_fields(client, index: str) -> set[str]:
    """Top-level field names mapped in the index."""
    mapping = client.indices.get_mapping(index=index)
    names: set[str] = set()
    for body in mapping.values():
        names.update(body.get("mappings", {}).get("properties", {}))
    return names


def sesa_text_fields(client, index: str) -> list[str]:
    """The index's ``sesa_text`` fields (the plugin encodes them at ingest without a pipeline)."""
    mapping = client.indices.get_mapping(index=index)
    return sorted({name for body in mapping.values()
                   for name, spec in body.get("mappings", {}).get("properties", {}).items()
                   if spec.get("type") == "sesa_text"})


def status_field(client=None, index: str | None = None) -> str:
    """The field that says a document went through SESA encoding: ``<prefix>_status`` of the pipeline's target, or
    of the index's first ``sesa_text`` field when it has one (pass ``client`` and ``index`` to look)."""
    if client is not None and index is not None and client.indices.exists(index=index):
        fields = sesa_text_fields(client, index)
        if fields:
            return schemas.field_names(schemas.text_field_prefix(fields[0]))["status"]
    return schemas.field_names()["status"]


def existing_ids(client, index: str, require_status: bool = False, page_size: int = 5000,
                 scroll: str = "2m") -> set[str]:
    """Ids of the documents in the index (only those with a sesa status when `require_status`), by a
    scroll over `_doc` order without sources."""
    query = {"exists": {"field": status_field(client, index)}} if require_status else {"match_all": {}}
    body = {"query": query, "_source": False, "sort": ["_doc"], "size": page_size}
    ids: set[str] = set()
    response = client.search(index=index, body=body, scroll=scroll)
    scroll_id = response.get("_scroll_id")
    try:
        while True:
            hits = response["hits"]["hits"]
            if not hits:
                break
            ids.update(hit["_id"] for hit in hits)
            if scroll_id is None:
                break
            response = client.scroll(body={"scroll_id": scroll_id, "scroll": scroll})
            scroll_id = response.get("_scroll_id", scroll_id)
    finally:
        if scroll_id is not None:
            try:
                client.clear_scroll(body={"scroll_id": [scroll_id]})
            except Exception:  # noqa: BLE001 - the scroll expires on its own
                pass
    return ids


def check_pipeline(client, pipeline: str | None) -> None:
    if pipeline is None or pipeline == NO_PIPELINE:
        return
    from opensearchpy.exceptions import NotFoundError

    try:
        client.ingest.get_pipeline(id=pipeline)
    except NotFoundError:
        raise SesaError(f"ingest pipeline {pipeline!r} does not exist on the cluster "
                        f"(use --pipeline {NO_PIPELINE} to index without one)") from None


# ------------------------------------------------------------------------------------------------------
# Failure reasons


def failure_reason(item: dict[str, Any]) -> tuple[str, str]:
    """(doc id, reason) of a failed bulk item; the reason has the doc id replaced so failures group."""
    op = next(iter(item.values())) if item else {}
    doc_id = str(op.get("_id", "?"))
    status = op.get("status", "?")
    error = op.get("error")
    if isinstance(error, dict):
        text = f"{error.get('type', 'error')}: {error.get('reason', '')}"
        cause = error.get("caused_by")
        if isinstance(cause, dict) and cause.get("reason") and cause.get("reason") not in text:
            text += f" (caused by {cause.get('type', 'error')}: {cause['reason']})"
    else:
        text = str(error) if error is not None else "unknown error"
    text = text.replace(f"[{doc_id}]", "[<id>]").replace(f"'{doc_id}'", "'<id>'")
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) > 300:
        text = text[:297] + "..."
    return doc_id, f"HTTP {status} {text}"


# ------------------------------------------------------------------------------------------------------
# Ingest


def _actions(docs: Iterable[Document], index: str) -> Iterator[dict[str, Any]]:
    for doc in docs:
        yield {"_op_type": "index", "_index": index, "_id": doc.id, "_source": doc.source()}


def ingest(
    client,
    dataset: Dataset | str,
    index: str,
    pipeline: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    fresh: bool = False,
    progress: bool = True,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S,
    max_retries: int = 3,
    bulk=None,
) -> IngestResult:
    """Index the documents of `dataset` that `index` does not have yet. Never raises for per-document
    failures: they are in the result. `bulk` replaces opensearch-py's streaming_bulk (tests)."""
    if batch_size < 1:
        raise SesaError(f"--batch-size must be at least 1, got {batch_size}")
    ds = dataset if isinstance(dataset, Dataset) else Dataset(dataset)
    if bulk is None:
        from opensearchpy.helpers import streaming_bulk as bulk
    check_pipeline(client, pipeline)
    started = time.monotonic()
    result = IngestResult(dataset=str(ds.path), index=index, pipeline=pipeline)
    result.created_index = ensure_index(client, index, fresh=fresh)
    result.require_status = pipeline != NO_PIPELINE and status_field(client, index) in mapped_fields(client, index)
    if result.created_index:
        present: set[str] = set()
    else:
        client.indices.refresh(index=index)
        present = existing_ids(client, index, require_status=result.require_status)

    # One cheap pass over the ids: how many are new (for the progress bar) and which are repeated.
    seen: set[str] = set()
    for doc_id in ds.iter_ids():
        if doc_id in seen:
            result.duplicates_in_corpus += 1
        seen.add(doc_id)
    result.corpus_documents = len(seen)
    result.already_present = len(seen & present)
    to_send = result.corpus_documents - result.already_present
    del seen

    sent: set[str] = set()

    def wanted() -> Iterator[Document]:
        for doc in ds.iter_corpus():
            if doc.id in present or doc.id in sent:
                continue
            sent.add(doc.id)
            yield doc

    from tqdm import tqdm

    bar = tqdm(total=to_send, unit="docs", desc=f"ingest {index}", disable=not progress or to_send == 0,
               file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
    kwargs: dict[str, Any] = {"request_timeout": request_timeout}
    if pipeline is not None:
        kwargs["pipeline"] = pipeline
    try:
        if to_send:
            for ok, item in bulk(client, _actions(wanted(), index), chunk_size=batch_size, raise_on_error=False,
                                 raise_on_exception=False, max_retries=max_retries, yield_ok=True, **kwargs):
                result.attempted += 1
                if ok:
                    result.indexed += 1
                else:
                    doc_id, reason = failure_reason(item)
                    result.record_failure(reason, doc_id)
                    bar.set_postfix(failed=result.failed, refresh=False)
                bar.update(1)
    finally:
        bar.close()
        try:
            client.indices.refresh(index=index)
        except Exception:  # noqa: BLE001 - a refresh failure must not hide the result
            pass
        result.seconds = time.monotonic() - started
    return result


def index_is_complete(client, ds: Dataset, index: str) -> tuple[bool, str]:
    """(complete, why not): the index exists and holds exactly the corpus's distinct documents (with a
    sesa status when the index maps that field)."""
    if not client.indices.exists(index=index):
        return False, f"index {index} does not exist"
    client.indices.refresh(index=index)
    status = status_field(client, index)
    if status in mapped_fields(client, index):
        count = client.count(index=index, body={"query": {"exists": {"field": status}}})["count"]
        what = f"documents with {status}"
    else:
        count = client.count(index=index)["count"]
        what = "documents"
    if count != ds.document_count:
        return False, f"index {index} has {count} {what}, the corpus {ds.document_count}"
    return True, ""


# ------------------------------------------------------------------------------------------------------
# CLI


def _cmd_ingest(args) -> int:
    import json

    from .cluster.stack import opensearch_client

    url = resolve_cluster_url(args.cluster)
    client = opensearch_client(url)
    ds = Dataset(args.dataset)
    pipeline = args.pipeline
    result = ingest(client, ds, args.index, pipeline=pipeline, batch_size=args.batch_size, fresh=args.fresh,
                    progress=not args.no_progress, request_timeout=args.request_timeout)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.summary())
    return 0 if result.ok else EXIT_FAILED_DOCS


def add_arguments(p) -> None:
    p.add_argument("dataset", metavar="DATASET_DIR", help="BEIR folder: corpus.jsonl[.gz], queries.jsonl, qrels/")
    p.add_argument("--index", required=True, help="target index (sesa-* gets the template and sesa-ingest)")
    p.add_argument("--pipeline", metavar="NAME|_none",
                   help="ingest pipeline for every document (default: the index's default pipeline; "
                        "_none: no pipeline)")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                   help=f"documents per bulk request (default {DEFAULT_BATCH_SIZE})")
    p.add_argument("--fresh", action="store_true", help="delete the index first")
    p.add_argument("--cluster", metavar="URL", help="OpenSearch URL (default: the node `sesa up` started)")
    p.add_argument("--request-timeout", type=float, default=DEFAULT_REQUEST_TIMEOUT_S,
                   help=f"seconds per bulk request (default {DEFAULT_REQUEST_TIMEOUT_S})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def register(subparsers) -> None:
    p = subparsers.add_parser("ingest", help="index a BEIR dataset (resumable; exit 2 when documents failed)")
    add_arguments(p)
    p.set_defaults(func=_cmd_ingest)
