"""An in-memory stand-in for the few opensearch-py calls that ingest and eval make (unit tests only; the
real cluster is exercised by integration/tests/test_ingest_eval_e2e.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import NotFoundError, RequestError
from opensearchpy.serializer import JSONSerializer

from integration import schemas


class FakeTransport:
    def __init__(self, owner: FakeClient):
        self.owner = owner
        self.serializer = JSONSerializer()

    def perform_request(self, method: str, path: str, **_: Any):
        self.owner.calls.append(("perform_request", method, path))
        if path in self.owner.routes:
            value = self.owner.routes[path]
            if isinstance(value, Exception):
                raise value
            return value
        raise NotFoundError(404, "not_found", {"error": {"reason": f"no handler for {path}"}})


class FakeIndices:
    def __init__(self, owner: FakeClient):
        self.owner = owner

    def exists(self, index: str) -> bool:
        return index in self.owner.indices_data

    def create(self, index: str, body: dict | None = None) -> dict:
        if index in self.owner.indices_data:
            raise RequestError(400, "resource_already_exists_exception", {})
        self.owner.calls.append(("create", index, body))
        if body is None and index.startswith("sesa-"):
            body = {"mappings": schemas.index_template(4, {})["template"]["mappings"],
                    "settings": {"default_pipeline": "sesa-ingest"}}
        self.owner.indices_data[index] = {}
        self.owner.index_bodies[index] = body or {}
        return {"acknowledged": True}

    def delete(self, index: str) -> dict:
        self.owner.indices_data.pop(index)
        self.owner.index_bodies.pop(index, None)
        self.owner.calls.append(("delete", index))
        return {"acknowledged": True}

    def refresh(self, index: str) -> dict:
        return {}

    def get_mapping(self, index: str) -> dict:
        return {index: {"mappings": self.owner.index_bodies.get(index, {}).get("mappings", {})}}

    def put_mapping(self, index: str, body: dict) -> dict:
        """As OpenSearch: a `_meta` in the body replaces the whole `_meta`."""
        mappings = self.owner.index_bodies.setdefault(index, {}).setdefault("mappings", {})
        mappings.update(body)
        return {"acknowledged": True}

    def get(self, index: str) -> dict:
        body = self.owner.index_bodies.get(index, {})
        return {index: {"mappings": body.get("mappings", {}),
                        "settings": {"index": body.get("settings", {})}}}


class FakeIngest:
    def __init__(self, owner: FakeClient):
        self.owner = owner

    def get_pipeline(self, id: str) -> dict:
        if id not in self.owner.ingest_pipelines:
            raise NotFoundError(404, "not_found", {})
        return {id: {}}


class FakeCat:
    def plugins(self, format: str = "json") -> list:
        return [{"component": "opensearch-knn", "version": "3.5.0.0"}]


class FakeClient:
    """Documents per index; bulk applies `sesa_status` when the index maps it and a pipeline runs;
    `fail_ids` maps doc ids to bulk errors; `searcher(index, body, params)` answers non-scroll searches."""

    def __init__(self, ingest_pipelines=("sesa-ingest",), fail_ids: dict[str, dict] | None = None,
                 searcher: Callable[[str, dict, dict], dict] | None = None):
        self.indices_data: dict[str, dict[str, dict]] = {}
        self.index_bodies: dict[str, dict] = {}
        self.ingest_pipelines = set(ingest_pipelines)
        self.fail_ids = dict(fail_ids or {})
        self.searcher = searcher
        self.routes: dict[str, Any] = {}
        self.calls: list = []
        self.bulk_requests: list[dict] = []
        self.scrolls: dict[str, list[list[str]]] = {}
        self.transport = FakeTransport(self)
        self.indices = FakeIndices(self)
        self.ingest = FakeIngest(self)
        self.cat = FakeCat()
        self.bulk_raises: Exception | None = None

    # -- helpers for tests ---------------------------------------------------------------------------
    def put_docs(self, index: str, docs: dict[str, dict], body: dict | None = None) -> None:
        if index not in self.indices_data:
            self.indices.create(index=index, body=body)
        self.indices_data[index].update(docs)

    def _has_status_field(self, index: str) -> bool:
        props = self.index_bodies.get(index, {}).get("mappings", {}).get("properties", {})
        return schemas.field_names()["status"] in props

    # -- API --------------------------------------------------------------------------------------------
    def info(self) -> dict:
        return {"cluster_name": "fake", "version": {"number": "3.5.0", "distribution": "opensearch"}}

    def bulk(self, body: str, pipeline: str | None = None, **kwargs: Any) -> dict:
        if self.bulk_raises is not None:
            raise self.bulk_raises
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        items = []
        self.bulk_requests.append({"docs": len(lines) // 2, "pipeline": pipeline, **kwargs})
        for action, source in zip(lines[::2], lines[1::2]):
            meta = action["index"]
            index, doc_id = meta["_index"], meta["_id"]
            if doc_id in self.fail_ids:
                items.append({"index": {"_index": index, "_id": doc_id, "status": 400, "error": self.fail_ids[doc_id]}})
                continue
            if index not in self.indices_data:
                self.indices.create(index=index)
            doc = dict(source)
            effective = pipeline if pipeline is not None else self.index_bodies[index].get("settings", {}).get("default_pipeline")
            if effective not in (None, "_none") and self._has_status_field(index):
                doc[schemas.field_names()["status"]] = "encoded"
            self.indices_data[index][doc_id] = doc
            items.append({"index": {"_index": index, "_id": doc_id, "status": 201, "result": "created"}})
        return {"errors": any(i["index"]["status"] >= 300 for i in items), "items": items}

    def _matching(self, index: str, query: dict) -> list[str]:
        docs = self.indices_data.get(index, {})
        if "exists" in query:
            field = query["exists"]["field"]
            return [i for i, d in docs.items() if d.get(field) is not None]
        return list(docs)

    def search(self, index: str, body: dict, scroll: str | None = None, params: dict | None = None,
               **kwargs: Any) -> dict:
        self.calls.append(("search", index, body, params))
        if scroll is not None:
            ids = self._matching(index, body.get("query", {"match_all": {}}))
            size = body.get("size", 10)
            pages = [ids[i:i + size] for i in range(0, len(ids), size)]
            scroll_id = f"scroll-{len(self.scrolls)}"
            self.scrolls[scroll_id] = pages[1:]
            first = pages[0] if pages else []
            return {"_scroll_id": scroll_id, "hits": {"hits": [{"_id": i} for i in first]}}
        if self.searcher is None:
            raise AssertionError("no searcher configured")
        return self.searcher(index, body, params or {})

    def scroll(self, body: dict) -> dict:
        pages = self.scrolls[body["scroll_id"]]
        page = pages.pop(0) if pages else []
        return {"_scroll_id": body["scroll_id"], "hits": {"hits": [{"_id": i} for i in page]}}

    def clear_scroll(self, body: dict) -> dict:
        for sid in body["scroll_id"]:
            self.scrolls.pop(sid, None)
        return {}

    def count(self, index: str, body: dict | None = None) -> dict:
        query = (body or {}).get("query", {"match_all": {}})
        return {"count": len(self._matching(index, query))}


def connection_error() -> Exception:
    return OSConnectionError("N/A", "connection refused", None)
