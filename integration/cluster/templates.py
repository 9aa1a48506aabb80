"""Apply the OpenSearch JSON of `schemas/` (index template, pipelines) to a cluster."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import schemas
from .errors import SesaError


@dataclass
class ModelFacts:
    """What the template needs from the inference server's Info."""

    dense_dimension: int
    dense_model: str  # "<id>@<version>"
    concept_model: str

    def models_meta(self) -> dict[str, Any]:
        prefix = schemas.conventions()["default_target_prefix"]
        return {prefix: {"dense": self.dense_model, "concepts": self.concept_model}}


@dataclass
class ApplyReport:
    applied: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def ingest_processors(client) -> set[str]:
    """Ingest processor types every node offers (ours appears once the plugin is installed)."""
    info = client.nodes.info(metric="ingest")
    sets = [
        {p["type"] for p in node.get("ingest", {}).get("processors", [])}
        for node in info.get("nodes", {}).values()
    ]
    return set.intersection(*sets) if sets else set()


def search_processors(client) -> set[str]:
    """Search pipeline processor types every node offers (request and response processors)."""
    info = client.nodes.info(metric="search_pipelines")
    sets = []
    for node in info.get("nodes", {}).values():
        section = node.get("search_pipelines", {})
        types = {p["type"] for kind in ("request_processors", "response_processors", "phase_results_processors")
                 for p in section.get(kind, [])}
        sets.append(types)
    return set.intersection(*sets) if sets else set()


def _processor_types(pipeline: dict, *sections: str) -> set[str]:
    return {next(iter(p)) for section in sections for p in pipeline.get(section, [])}


def apply_all(client, facts: ModelFacts) -> ApplyReport:
    conv = schemas.conventions()
    report = ApplyReport()
    processors = ingest_processors(client)
    pipeline = schemas.load_json("ingest-pipeline.json")
    needed = _processor_types(pipeline, "processors")
    if needed <= processors:
        client.ingest.put_pipeline(id=conv["default_ingest_pipeline"], body=pipeline)
        report.applied.append(f"ingest pipeline {conv['default_ingest_pipeline']}")
    else:
        raise SesaError(
            f"the cluster lacks the ingest processors {sorted(needed - processors)}: "
            "is the opensearch-sesa plugin installed on every node?"
        )
    search_pipeline = schemas.load_json("search-pipeline.json")
    needed = _processor_types(search_pipeline, "request_processors", "response_processors")
    missing = needed - search_processors(client)
    if missing:
        raise SesaError(f"the cluster lacks the search processors {sorted(missing)}: "
                        "is the opensearch-sesa plugin installed on every node?")
    client.transport.perform_request("PUT", f"/_search/pipeline/{conv['default_search_pipeline']}",
                                     body=search_pipeline)
    report.applied.append(f"search pipeline {conv['default_search_pipeline']}")
    template = schemas.index_template(facts.dense_dimension, facts.models_meta())
    client.indices.put_index_template(name=conv["default_index_template"], body=template)
    report.applied.append(f"index template {conv['default_index_template']} ({conv['default_index_pattern']})")
    return report
