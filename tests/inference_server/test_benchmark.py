"""The benchmark harness runs end to end (tiny model, tiny durations) and reports ratios."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_run_server_benchmark_tiny(tiny_models, cfg_factory, tmp_path):
    from integration.bench.server import run_server_benchmark

    cfg = cfg_factory(**{"models.encoder": str(tiny_models["encoder_dir"]), "models.cache_dir": str(tiny_models["cache"]),
                         "runtime.intra_op_threads": 1})
    texts = [f"short text number {i} about things" for i in range(64)]
    rep = run_server_benchmark(cfg, concurrency=(1, 4), duration_s=0.3, rounds=1, warmup_s=0.1, batch_sizes=(1, 4),
                               texts=texts, log_path=tmp_path / "bench.log")
    assert rep["offline"]["best_texts_per_s"] > 0 and set(rep["offline"]["per_batch_size"]) == {"1", "4"}
    assert [r["clients"] for r in rep["batched"]] == [1, 4] and [r["clients"] for r in rep["unbatched"]] == [1, 4]
    assert all(r["errors"] == 0 and r["texts_per_s"] > 0 for r in rep["batched"] + rep["unbatched"])
    s = rep["summary"]
    assert s["clients"] == 4 and s["served_over_offline"] > 0 and s["batched_over_unbatched"] > 0
    assert "| clients |" in rep["markdown"] and "GPU" in rep["markdown"]
