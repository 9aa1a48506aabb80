"""Shared pieces of the benchmarks: timing statistics, hardware facts, report writing."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np


def latency_stats(seconds: list[float]) -> dict[str, float]:
    arr = np.asarray(seconds, dtype=np.float64) * 1000.0
    if arr.size == 0:
        return {"n": 0, "p50_ms": float("nan"), "p99_ms": float("nan"), "mean_ms": float("nan")}
    return {
        "n": int(arr.size),
        "p50_ms": round(float(np.percentile(arr, 50)), 2),
        "p99_ms": round(float(np.percentile(arr, 99)), 2),
        "mean_ms": round(float(arr.mean()), 2),
    }


def hardware() -> dict[str, Any]:
    from integration.bench.server import detect_hardware

    return detect_hardware()


def provenance(started: float) -> dict[str, Any]:
    """What every report ends with: the machine that measured it and when the run started (UTC)."""
    return {"hardware": hardware(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))}


def write_report(report: dict[str, Any], markdown: str, out: Path | None) -> None:
    if out is None:
        return
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "report.md").write_text(markdown)
    print(f"wrote {out / 'report.json'} and {out / 'report.md'}")


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start
