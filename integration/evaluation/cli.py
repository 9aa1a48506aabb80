"""`sesa eval DATASET_DIR`: ingest if needed, run every judged query in every mode, write the reports.

Also registers `sesa ingest` (integration/ingest.py), so integration/cli.py needs one line:
`from .evaluation.cli import register as _register_eval; _register_eval(sub)`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cluster.errors import SesaError
from . import modes as modes_mod


@dataclass
class EvalOutcome:
    report: dict[str, Any]
    paths: dict[str, Path] = field(default_factory=dict)
    ingest: Any = None  # IngestResult when this run ingested


def default_index(dataset_dir: str | Path) -> str:
    name = Path(dataset_dir).expanduser().resolve().name.lower()
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-_.") or "dataset"
    return f"sesa-{safe}"


def _index_settings(client, index: str) -> dict[str, Any]:
    try:
        body = client.indices.get(index=index)
        return next(iter(body.values()))
    except Exception:  # noqa: BLE001
        return {}


def _pipeline_body(client, kind: str, name: str) -> dict[str, Any] | None:
    path = f"/_search/pipeline/{name}" if kind == "search" else f"/_ingest/pipeline/{name}"
    try:
        body = client.transport.perform_request("GET", path)
    except Exception:  # noqa: BLE001
        return None
    return body.get(name) if isinstance(body, dict) else None


def settings_provenance(client, index: str, modes: Sequence[str], size: int, permutations: int,
                        seed: int, split: str, fusion_weights: dict[str, float] | None = None) -> dict[str, Any]:
    """Each setting that shapes the figures, its value and where it came from."""
    from .. import schemas

    conv = schemas.conventions()
    idx = _index_settings(client, index)
    props = idx.get("mappings", {}).get("properties", {})
    index_settings = idx.get("settings", {}).get("index", {})
    prov: dict[str, Any] = {
        "retrieval depth": {"value": size, "source": "integration/evaluation/modes.py (Recall@100 needs the top 100)"},
        "judgements": {"value": f"qrels/{split}.tsv, grade > 0 relevant, grades as gains",
                       "source": "dataset folder; metrics via ranx (integration/evaluation/metrics.py)"},
        "text analyzer": {
            "value": {f: props.get(f, {}).get("analyzer", "standard (default)") for f in ("title", "text")},
            "source": f"mapping of index {index} (schemas/opensearch/index-template.json)",
        },
        "bm25 similarity": {
            "value": index_settings.get("similarity") or "OpenSearch default BM25 (k1 1.2, b 0.75)",
            "source": f"settings of index {index}" + ("" if index_settings.get("similarity")
                                                        else " (no similarity configured)"),
        },
        "significance test": {"value": f"{permutations} permutations, seed {seed}",
                              "source": "integration/evaluation/significance.py defaults / --permutations --seed"},
    }
    if "bm25" in modes:
        prov["bm25 query"] = {"value": modes_mod.BM25_MULTI_MATCH, "source": modes_mod.BM25_SOURCE}
    pipeline_modes = [m for m in modes if modes_mod.spec(m).uses_pipeline]
    if pipeline_modes:
        name = modes_mod.search_pipeline_name()
        body = _pipeline_body(client, "search", name)
        if body is None:
            prov["search pipeline"] = {"value": "absent", "source": f"cluster GET /_search/pipeline/{name}"}
        else:
            same = body == schemas.load_json("search-pipeline.json")
            prov["search pipeline"] = {
                "value": body,
                "source": f"cluster GET /_search/pipeline/{name}; "
                          + ("identical to schemas/opensearch/search-pipeline.json" if same
                             else "DIFFERS from schemas/opensearch/search-pipeline.json"),
            }
        prov["per-request choices"] = {
            "value": {m: modes_mod.describe(m)["body"]["ext"]["sesa"] for m in pipeline_modes},
            "source": "integration/evaluation/modes.py (mode and rerank only; fusion and rerank settings "
                      "are the pipeline's)",
        }
        if fusion_weights:
            prov["fusion weights"] = {"value": fusion_weights,
                                      "source": "--fusion-weights, sent as ext.sesa.fusion.weights (hybrid modes)"}
    default_pipeline = index_settings.get("default_pipeline")
    if default_pipeline and default_pipeline != "_none":
        body = _pipeline_body(client, "ingest", default_pipeline)
        same = body == schemas.load_json("ingest-pipeline.json") if body is not None else False
        prov["ingest pipeline"] = {
            "value": body if body is not None else f"{default_pipeline} (absent)",
            "source": f"cluster GET /_ingest/pipeline/{default_pipeline}"
                      + ("; identical to schemas/opensearch/ingest-pipeline.json" if same else ""),
        }
    meta = idx.get("mappings", {}).get("_meta", {}).get(conv["index_meta_key"], {})
    return {"provenance": prov, "index_models": meta.get("models") if isinstance(meta, dict) else None}


def evaluate_dataset(
    client,
    dataset_dir: str | Path,
    *,
    index: str | None = None,
    modes: Sequence[str] = modes_mod.MODES,
    split: str = "test",
    out_dir: str | Path | None = None,
    cluster_url: str = "",
    server_address: str | None = None,
    ingest_pipeline: str | None = None,
    batch_size: int = 200,
    size: int = modes_mod.DEFAULT_SIZE,
    permutations: int | None = None,
    seed: int | None = None,
    progress: bool = True,
    command: str | None = None,
    log=print,
    fusion_weights: dict[str, float] | None = None,
) -> EvalOutcome:
    from ir import metrics
    from ir.beir import Dataset

    from .. import ingest as ingest_mod
    from . import environment, runner, significance
    from . import report as report_mod

    permutations = significance.DEFAULT_PERMUTATIONS if permutations is None else permutations
    seed = significance.DEFAULT_SEED if seed is None else seed
    ds = Dataset(dataset_dir)
    index = index or default_index(ds.path)
    queries, qrels = ds.judged_queries(split)
    if not queries:
        raise SesaError(f"qrels/{split}.tsv of {ds.path} judges no query as relevant to anything")

    outcome = EvalOutcome(report={})
    complete, why = ingest_mod.index_is_complete(client, ds, index)
    if not complete:
        log(f"{why}: ingesting {ds.path} into {index} ...")
        result = ingest_mod.ingest(client, ds, index, pipeline=ingest_pipeline, batch_size=batch_size,
                                   progress=progress)
        outcome.ingest = result
        log(result.summary())
        if not result.ok:
            raise SesaError(f"{result.failed} documents of {ds.name} failed to index into {index}; "
                            "fix the cause and run again (the ingest resumes)")
        complete, why = ingest_mod.index_is_complete(client, ds, index)
        if not complete:
            raise SesaError(f"the index is still incomplete after ingesting: {why}")

    mapped = ingest_mod.mapped_fields(client, index)
    pipeline_check = None
    if any(modes_mod.spec(m).uses_pipeline for m in modes):
        pipeline_check = runner.search_pipeline_exists(client, modes_mod.search_pipeline_name())
    runs: dict[str, runner.ModeRun] = {}
    evaluations: dict[str, metrics.Evaluation] = {}
    for mode in modes:
        reason = runner.unavailable_reason(client, index, mode, mapped, pipeline_check)
        run = runner.run_mode(client, index, mode, queries, size=size, progress=progress, unavailable=reason,
                              fusion_weights=fusion_weights)
        runs[mode] = run
        if run.ok:
            evaluations[mode] = metrics.evaluate(qrels, run.rankings)
        else:
            log(f"{mode}: unavailable: {run.unavailable}")

    plugin = environment.sesa_plugin(client)
    address = server_address or environment.default_server_address(plugin)
    report = report_mod.make_report(
        dataset={"name": ds.name, "path": str(ds.path.resolve()), "documents": ds.document_count,
                 "judged_queries": len(queries), "judgements": sum(len(v) for v in qrels.values())},
        split=split,
        index=index,
        cluster_url=cluster_url,
        modes=list(modes),
        runs=runs,
        evaluations=evaluations,
        opensearch=environment.opensearch(client),
        plugin=plugin,
        server=environment.inference_server(address),
        hardware=environment.hardware(),
        date=environment.now_utc(),
        settings=settings_provenance(client, index, modes, size, permutations, seed, split, fusion_weights),
        ingest=outcome.ingest.to_dict() if outcome.ingest is not None else None,
        command=command,
        revision=environment.git_revision(),
        permutations=permutations,
        seed=seed,
    )
    outcome.report = report
    if out_dir is not None:
        outcome.paths = report_mod.write_all(report, out_dir)
    return outcome


def _cmd_eval(args: argparse.Namespace) -> int:
    from ..cluster.stack import opensearch_client
    from ..ingest import resolve_cluster_url
    from .report import table_lines

    try:
        modes = modes_mod.parse_modes(args.modes)
        weights = modes_mod.parse_fusion_weights(args.fusion_weights) if args.fusion_weights else None
    except ValueError as exc:
        raise SesaError(str(exc)) from None
    url = resolve_cluster_url(args.cluster)
    client = opensearch_client(url)
    try:
        client.info()
    except Exception as exc:  # noqa: BLE001
        raise SesaError(f"OpenSearch at {url} is not reachable ({type(exc).__name__}): start it with `sesa up` "
                        "or pass --cluster URL") from None
    from ir.beir import Dataset

    ds = Dataset(args.dataset)
    out_dir = args.out or Path("eval-results") / f"{ds.name}-{args.split}"
    outcome = evaluate_dataset(
        client, ds.path, index=args.index, modes=modes, split=args.split, out_dir=out_dir, cluster_url=url,
        server_address=args.server, ingest_pipeline=args.pipeline, batch_size=args.batch_size, size=args.size,
        permutations=args.permutations, seed=args.seed, progress=not args.no_progress, fusion_weights=weights,
        command="sesa " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else None,
    )
    print("\n".join(table_lines(outcome.report)))
    print("\nreports: " + ", ".join(str(p) for p in outcome.paths.values()))
    return 0


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    from .significance import DEFAULT_PERMUTATIONS, DEFAULT_SEED

    p.add_argument("dataset", metavar="DATASET_DIR", help="BEIR folder: corpus.jsonl[.gz], queries.jsonl, qrels/")
    p.add_argument("--index", help="index to search (default sesa-<folder name>); ingested if missing or incomplete")
    p.add_argument("--modes", default=",".join(modes_mod.MODES),
                   help=f"comma-separated search modes (default {','.join(modes_mod.MODES)})")
    p.add_argument("--split", default="test", help="qrels split (default test)")
    p.add_argument("--out", type=Path, help="report folder (default eval-results/<dataset>-<split>)")
    p.add_argument("--cluster", metavar="URL", help="OpenSearch URL (default: the node `sesa up` started)")
    p.add_argument("--server", metavar="HOST:PORT", help="inference server to describe in the report "
                                                          "(default: the plugin's endpoint)")
    p.add_argument("--pipeline", metavar="NAME|_none", help="ingest pipeline when ingesting (default: the index's)")
    p.add_argument("--batch-size", type=int, default=200, help="bulk documents per request when ingesting")
    p.add_argument("--size", type=int, default=modes_mod.DEFAULT_SIZE, help="hits per query (default 100)")
    p.add_argument("--fusion-weights", metavar="bm25=W,dense=W,concepts=W",
                   help="min-max/RRF weights for the hybrid modes, sent in ext.sesa (default: the search pipeline's)")
    p.add_argument("--permutations", type=int, default=DEFAULT_PERMUTATIONS,
                   help=f"randomization test permutations (default {DEFAULT_PERMUTATIONS})")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="randomization test seed")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def register(subparsers) -> None:
    """Adds `ingest` and `eval` to the `sesa` command."""
    from .. import ingest as ingest_mod

    ingest_mod.register(subparsers)
    p = subparsers.add_parser("eval", help="nDCG@10 / Recall@100 / MRR@10 of the search modes on a BEIR dataset")
    add_eval_arguments(p)
    p.set_defaults(func=_cmd_eval)
