"""`sesa bench mixed`: the verdicts and the report, from phase results (the phases themselves run in e2e)."""

from __future__ import annotations

from integration.bench.mixed import _mean_queue_ms, _met, _queue_seconds, _ratios, _search_summary, to_markdown


def _phase(seconds, outcomes, server=()):
    import threading

    return _search_summary({"lock": threading.Lock(), "seconds": list(seconds), "outcomes": dict(outcomes),
                            "server": list(server)})


def test_ratios_and_targets():
    idle = _phase([0.02] * 50, {"ok": 50}, [{"queue_ms": 0.5, "compute_ms": 4.0}])
    during = _phase([0.06] * 49 + [0.15], {"ok": 50}, [{"queue_ms": 30.0, "compute_ms": 5.0}] * 3)
    ratio = _ratios(idle, during, {"docs_per_s": 40.0}, {"docs_per_s": 36.0})
    assert ratio == {"search_p50": 3.0, "search_p99": round(during["latency"]["p99_ms"] / 20.0, 2), "ingest": 0.9}
    assert _met(ratio, during) == {"search_p50": True, "search_p99": True, "no_degraded": True, "ingest": True}
    assert during["server_encode"] == {"reported": 3, "queue_ms_p50": 30.0, "compute_ms_p50": 5.0}


def test_a_degraded_search_or_slow_ingest_misses_the_target():
    idle = _phase([0.02] * 10, {"ok": 10})
    during = _phase([0.25] * 10, {"ok": 9, "degraded": 1})
    ratio = _ratios(idle, during, {"docs_per_s": 40.0}, {"docs_per_s": 20.0})
    met = _met(ratio, during)
    assert met == {"search_p50": False, "search_p99": False, "no_degraded": False, "ingest": False}
    report = {"search": {"idle": idle, "during_ingest": during},
              "ingest": {"alone": {"docs_per_s": 40.0, "failed": 0}, "during_searches": {"docs_per_s": 20.0, "failed": 0}},
              "ratios": ratio, "met": met, "bulk_clients": 4, "bulk_size": 32, "search_interval_ms": 200,
              "phase_s": 30.0, "hardware": {"cpu": "AMD EPYC"}}
    md = to_markdown(report)
    assert "NOT met" in md and "AMD EPYC" in md and "| ingest docs/s | 40.0 | 20.0 | 0.5 |" in md
    assert "not reported" in md  # no server timing came back


def test_no_searches_gives_no_ratio_and_no_pass():
    idle = _phase([], {})
    during = _phase([0.1], {"ok": 1})
    ratio = _ratios(idle, during, {"docs_per_s": 0.0}, {"docs_per_s": 1.0})
    assert ratio == {"search_p50": None, "search_p99": None, "ingest": None}
    assert _met(ratio, during)["search_p50"] is False and _met(ratio, during)["ingest"] is False


def test_queue_time_by_priority_from_prometheus():
    before = _queue_seconds({'sesa_queue_seconds_sum{model="encoder",priority="bulk"}': 10.0,
                             'sesa_queue_seconds_count{model="encoder",priority="bulk"}': 100.0})
    after = _queue_seconds({'sesa_queue_seconds_sum{model="encoder",priority="bulk"}': 30.0,
                            'sesa_queue_seconds_count{model="encoder",priority="bulk"}': 200.0,
                            'sesa_queue_seconds_sum{model="encoder",priority="interactive"}': 0.5,
                            'sesa_queue_seconds_count{model="encoder",priority="interactive"}': 100.0,
                            'sesa_queue_seconds_bucket{model="encoder",priority="bulk",le="0.1"}': 7.0})
    assert _mean_queue_ms(before, after) == {'{model="encoder",priority="bulk"}': 200.0,
                                             '{model="encoder",priority="interactive"}': 5.0}
