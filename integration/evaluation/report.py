"""report.json (everything), report.md (the table and the context), chart.png (the modes side by side)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ir.metrics import LABELS, METRICS, PRIMARY, Evaluation

from .modes import BASELINE, PLAIN_HYBRID
from .runner import ModeRun
from .significance import DEFAULT_PERMUTATIONS, DEFAULT_SEED, randomization_test

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
CHART_PNG = "chart.png"
SCHEMA_VERSION = 1

REQUIRED_KEYS = (
    "schema_version", "dataset", "split", "index", "modes", "metrics", "per_query", "significance",
    "models", "plugin", "opensearch", "hardware", "date", "settings",
)


def significance(evaluations: Mapping[str, Evaluation], baseline: str = BASELINE, metric: str = PRIMARY,
                 permutations: int = DEFAULT_PERMUTATIONS, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Each evaluated mode against the baseline (or the first evaluated mode when the baseline is absent)."""
    if not evaluations:
        return {"baseline": None, "metric": metric, "comparisons": {}}
    if baseline not in evaluations:
        baseline = next(iter(evaluations))
    def against(base: str) -> dict[str, Any]:
        return {mode: randomization_test(ev.per_query[metric], evaluations[base].per_query[metric],
                                         permutations=permutations, seed=seed).to_dict()
                for mode, ev in evaluations.items() if mode != base}

    out = {"baseline": baseline, "metric": metric, "permutations": permutations, "seed": seed,
           "comparisons": against(baseline)}
    if PLAIN_HYBRID in evaluations and baseline != PLAIN_HYBRID:
        # the comparison a user makes: our defaults against the BM25 + k-NN hybrid they could set up themselves
        out["plain_hybrid"] = {"baseline": PLAIN_HYBRID, "comparisons": against(PLAIN_HYBRID)}
    return out


def make_report(
    *,
    dataset: Mapping[str, Any],
    split: str,
    index: str,
    cluster_url: str,
    modes: list[str],
    runs: Mapping[str, ModeRun],
    evaluations: Mapping[str, Evaluation],
    opensearch: Mapping[str, Any],
    plugin: Mapping[str, Any],
    server: Mapping[str, Any],
    hardware: Mapping[str, Any],
    date: str,
    settings: Mapping[str, Any],
    ingest: Mapping[str, Any] | None = None,
    command: str | None = None,
    revision: str | None = None,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    mode_entries: dict[str, Any] = {}
    for mode in modes:
        run = runs.get(mode)
        ev = evaluations.get(mode)
        if run is None or not run.ok or ev is None:
            reason = run.unavailable if run is not None and run.unavailable else "not run"
            mode_entries[mode] = {"status": f"unavailable: {reason}", "available": False}
            continue
        mode_entries[mode] = {
            "status": "ok",
            "available": True,
            "queries": ev.queries,
            "metrics": ev.mean,
            "seconds": round(run.seconds, 2),
            "queries_per_s": round(len(run.rankings) / run.seconds, 2) if run.seconds > 0 else None,
            "latency_ms": run.latency_summary(),
            "notes": list(run.notes),
        }
    models = {
        "inference_server": dict(server),
        "index_meta": settings.get("index_models"),
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "dataset": dict(dataset),
        "split": split,
        "index": index,
        "cluster_url": cluster_url,
        "modes": mode_entries,
        "metrics": {m: evaluations[m].mean for m in modes if m in evaluations and mode_entries[m]["available"]},
        "metric_names": list(METRICS),
        "per_query": {m: evaluations[m].per_query for m in modes
                      if m in evaluations and mode_entries[m]["available"]},
        "significance": significance({m: evaluations[m] for m in modes
                                      if m in evaluations and mode_entries[m]["available"]},
                                     permutations=permutations, seed=seed),
        "models": models,
        "plugin": dict(plugin),
        "opensearch": dict(opensearch),
        "hardware": dict(hardware),
        "date": date,
        "settings": dict(settings),
        "ingest": dict(ingest) if ingest else None,
        "command": command,
        "revision": revision,
    }


# ------------------------------------------------------------------------------------------------------
# Writers


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _p(value: float) -> str:
    return f"{value:.4f}" if value >= 0.0001 else f"{value:.1e}"


def table_lines(report: Mapping[str, Any]) -> list[str]:
    """The Markdown table of the modes (also what `sesa eval` prints)."""
    metric_names = report.get("metric_names") or list(METRICS)
    sig = report.get("significance") or {}
    base = sig.get("baseline")
    primary = sig.get("metric", PRIMARY)
    plain = sig.get("plain_hybrid") or {}
    plain_cols = [f"Δ vs {plain['baseline']}", "p"] if plain else []
    header = ["mode", *[LABELS.get(m, m) for m in metric_names],
              f"Δ {LABELS.get(primary, primary)} vs {base or '–'}", "p", *plain_cols, "latency p50 ms", "status"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for mode, entry in report["modes"].items():
        if not entry.get("available"):
            cells = [mode, *["–"] * len(metric_names), "–", "–", *["–"] * len(plain_cols), "–", entry["status"]]
        else:
            comp = (sig.get("comparisons") or {}).get(mode)
            delta = f"{comp['delta']:+.3f}" if comp else ("(baseline)" if mode == base else "–")
            pval = _p(comp["p_value"]) if comp else "–"
            latency = entry.get("latency_ms", {}).get("p50")
            status = "ok" + ("; " + "; ".join(entry["notes"]) if entry.get("notes") else "")
            extra = []
            if plain:
                pc = (plain.get("comparisons") or {}).get(mode)
                extra = [f"{pc['delta']:+.3f}" if pc else ("(plain)" if mode == plain["baseline"] else "–"),
                         _p(pc["p_value"]) if pc else "–"]
            cells = [mode, *[_fmt(entry["metrics"].get(m)) for m in metric_names], delta, pval, *extra,
                     _fmt(latency, 1) if latency is not None else "–", status]
        lines.append("| " + " | ".join(" ".join(str(c).split()).replace("|", "\\|") for c in cells) + " |")
    return lines


def write_json(report: Mapping[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(report, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    return path


def write_markdown(report: Mapping[str, Any], path: Path) -> Path:
    ds = report["dataset"]
    srv = (report.get("models") or {}).get("inference_server") or {}
    plugin = report.get("plugin") or {}
    osinfo = report.get("opensearch") or {}
    hw = report.get("hardware") or {}
    sig = report.get("significance") or {}
    lines = [
        f"# Retrieval evaluation: {ds.get('name')} ({report['split']})",
        "",
        (f"{report['date']} · index `{report['index']}` · {ds.get('documents', '?')} documents · "
         f"{ds.get('judged_queries', '?')} judged queries"),
        "",
        *table_lines(report),
        "",
    ]
    if sig.get("comparisons"):
        lines += [
            (f"Δ and p: paired randomization test of per-query {LABELS.get(sig['metric'], sig['metric'])} "
             f"against `{sig['baseline']}`"
             + (f" and against `{sig['plain_hybrid']['baseline']}` (the plain BM25 + k-NN hybrid)"
                if sig.get("plain_hybrid") else "")
             + f" ({sig['permutations']:,} sign-flip permutations, seed {sig['seed']}, two-sided)."),
            "",
        ]
    lines += ["## Setup", ""]
    if osinfo or plugin:  # empty when no cluster was asked (`sesa eval-concepts` asks the server alone)
        lines.append(f"- OpenSearch: {osinfo.get('version') or osinfo.get('unavailable', '?')}")
        lines.append(f"- SESA plugin: {plugin.get('version') or 'unavailable: ' + str(plugin.get('unavailable', '?'))}")
    if srv.get("unavailable"):
        lines.append(f"- Inference server ({srv.get('address')}): unavailable: {srv['unavailable']}")
    else:
        lines.append(f"- Inference server {srv.get('server_version', '')} at {srv.get('address')} on "
                     f"{srv.get('device', '?')}: {', '.join(srv.get('models_summary', [])) or '?'}")
    gpu = ", ".join(g["name"] for g in hw.get("gpus") or []) or "none"
    lines.append(f"- Hardware: {hw.get('cpu_model')}, {hw.get('cpu_cores_usable', hw.get('cpu_cores_logical'))} "
                 f"cores, {hw.get('memory_gib', '?')} GiB, GPU: {gpu}")
    if report.get("revision"):
        lines.append(f"- Revision: {report['revision']}")
    if report.get("command"):
        lines.append(f"- Command: `{report['command']}`")
    settings = report.get("settings") or {}
    if settings.get("provenance"):
        lines += ["", "## Where the settings came from", ""]
        for name, item in settings["provenance"].items():
            lines.append(f"- **{name}**: {item.get('value')} — {item.get('source')}")
    lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_chart(report: Mapping[str, Any], path: Path) -> Path:
    """Grouped bars: one group per metric, one bar per available mode; unavailable modes in a footnote."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    metric_names = report.get("metric_names") or list(METRICS)
    available = [m for m, e in report["modes"].items() if e.get("available")]
    missing = [m for m, e in report["modes"].items() if not e.get("available")]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.8 * len(metric_names) + 0.6 * len(available)), 4.2), dpi=110)
    width = 0.8 / max(1, len(available))
    for i, mode in enumerate(available):
        values = [report["modes"][mode]["metrics"].get(m, 0.0) for m in metric_names]
        xs = [j + (i - (len(available) - 1) / 2) * width for j in range(len(metric_names))]
        bars = ax.bar(xs, values, width=width * 0.95, label=mode)
        for bar, value in zip(bars, values):
            ax.annotate(f"{value:.3f}", (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom",
                        fontsize=7, xytext=(0, 1), textcoords="offset points")
    ax.set_xticks(range(len(metric_names)))
    ax.set_xticklabels([LABELS.get(m, m) for m in metric_names])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.set_title(f"{report['dataset'].get('name')} ({report['split']}), index {report['index']}")
    if available:
        ax.legend(loc="upper left", fontsize=8, ncol=min(len(available), 5))
    else:
        ax.text(0.5, 0.5, "no mode could run", ha="center", va="center", transform=ax.transAxes)
    if missing:
        fig.text(0.01, 0.01, "unavailable: " + ", ".join(missing), fontsize=7, color="gray")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout(rect=(0, 0.04 if missing else 0, 1, 1))
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def write_all(report: Mapping[str, Any], out_dir: str | Path) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return {
        "json": write_json(report, out / REPORT_JSON),
        "markdown": write_markdown(report, out / REPORT_MD),
        "chart": write_chart(report, out / CHART_PNG),
    }
