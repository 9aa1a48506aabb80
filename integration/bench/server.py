"""Server benchmark: does dynamic batching turn single-text clients into batch throughput?

One run measures, on the same machine and texts:

1. offline best-batch throughput of the runtime (tokenize + forward + pooling + concept head,
   no gRPC, length-sorted batches), sweeping batch sizes - the ceiling;
2. throughput and p50/p99 latency through a real server (a ``sesa-server serve`` subprocess)
   over a real channel with 1, 8 and 32 concurrent clients sending one text per call;
3. the same with batching off (``max_batch_size: 1``);

and reports the ratios (served / offline best, batched / unbatched) as a dict and markdown.
Clients run in this process (grpc.aio), so on a small machine they share the CPU with the
server, as a co-located caller would. A GPU is detected and recorded when present.

``python -m integration.bench.server [--config FILE] [--duration 3] [--rounds 3] [--json out.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from inference_server import __version__, paths
from inference_server.config import ServerConfig, load_config

from ..cluster.server_process import ServerNotReady, SpawnedServer, server_env


def default_texts(n: int = 2000) -> list[str]:
    """Short real texts (first sentence of ESCO occupation descriptions), else synthetic ones."""
    try:
        with open(paths.esco_data_dir() / "occupations.csv", encoding="utf-8", newline="") as f:
            rows = [r["description"] for r in csv.DictReader(f)]
        from model_building.concept_packs.esco import split_esco_text as split_esco_text

        out = []
        for text in rows:
            _, desc = split_esco_text(text)
            sent = " ".join(desc[:40]).split(". ")[0]
            if len(sent.split()) >= 5:
                out.append(sent)
            if len(out) >= n:
                break
        if len(out) >= 100:
            return out
    except (FileNotFoundError, KeyError):
        pass
    rng = np.random.default_rng(0)
    words = ("data model search engine query user text vector concept skill job nurse python cloud "
             "teacher manage develop design analyse report customer service team project").split()
    return [" ".join(rng.choice(words, size=int(rng.integers(6, 20)))) for _ in range(n)]


def detect_hardware() -> dict[str, Any]:
    import onnxruntime as ort

    from inference_server.runtime.backend import cpu_name, gpu_name, cpu_cores

    gpu = gpu_name(0)
    return {
        "cpu": cpu_name(),
        "cores": cpu_cores(),
        "gpu": gpu,
        "onnxruntime": ort.__version__,
        "ort_providers": ort.get_available_providers(),
        "python": platform.python_version(),
    }


class OfflineRunner:
    """The encoder runtime alone (tokenize + forward + pooling + concept head), no gRPC.

    Texts are sorted by token length and batched in that order, so a batch pads as little as
    possible: the best a batching runtime can do with these texts.
    """

    def __init__(self, cfg: ServerConfig, texts: list[str]):
        from inference_server.runtime.loader import load_encoder

        self.enc = load_encoder(cfg)
        self.k = cfg.concepts.default_top_k if self.enc.head is not None else 0
        lengths = [s.num_tokens for s in self.enc.tokenize(texts, False)]
        self.sorted = [texts[i] for i in np.argsort(lengths, kind="stable")]
        self.arrival = list(texts)

    def _run(self, chunk: list[str]) -> None:
        from inference_server.runtime.encoder import EncodeItem

        self.enc.compute([EncodeItem(s, self.k) for s in self.enc.tokenize(chunk, False)])

    def measure(self, batch_size: int, duration_s: float, order: str = "sorted") -> float:
        """Texts/s at one batch size; ``order`` "sorted" (little padding) or "arrival" (as sent)."""
        b = batch_size
        texts = self.sorted if order == "sorted" else self.arrival
        chunks = [texts[i: i + b] for i in range(0, len(texts) - b + 1, b)] or [texts[:b]]
        self._run(chunks[0])  # warm-up
        n, i = 0, 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < duration_s:
            chunk = chunks[(i * 7919) % len(chunks)]  # spread over short and long texts
            i += 1
            self._run(chunk)
            n += len(chunk)
        return n / (time.perf_counter() - t0)

    def describe(self) -> dict[str, Any]:
        e = self.enc
        return {"encoder": f"{e.meta.model_id}@{e.meta.version}",
                "concepts": f"{e.head.name} ({e.head.size})" if e.head else "none",
                "device": e.backend.device}


class ServerProcess:
    """``sesa-server serve`` in a subprocess on a free port, with the given config."""

    def __init__(self, cfg: ServerConfig, log_path: Path):
        data = cfg.model_dump(mode="json")
        data.update({"port": 0})
        data["metrics"]["enabled"] = False
        data["auth"] = {"token_env": None}
        data["logging"]["level"] = "WARNING"
        self._dir = Path(tempfile.mkdtemp(prefix="sesa-bench-"))
        self._cfg_file = self._dir / "server.yaml"
        self._cfg_file.write_text(yaml.safe_dump(data), encoding="utf-8")
        self._ready = self._dir / "ready"
        self._log = log_path
        self.server: SpawnedServer | None = None
        self.port = 0

    def __enter__(self) -> "ServerProcess":
        self.server = SpawnedServer(["--config", str(self._cfg_file)], self._log, server_env(),
                                    ready_file=self._ready, append_log=True, new_session=False)
        try:
            self.port = self.server.wait_ready(600)[0]
        except ServerNotReady as exc:
            if exc.returncode is None:
                raise RuntimeError("benchmark server did not start in 600 s") from None
            raise RuntimeError(f"benchmark server exited with {exc.returncode}; see {self._log}") from None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.server is not None:
            self.server.stop()
        import shutil

        shutil.rmtree(self._dir, ignore_errors=True)


async def _load(address: str, texts: list[str], clients: int, duration_s: float, warmup_s: float) -> dict[str, Any]:
    import grpc

    from inference_server.contract import inference_pb2 as pb
    from inference_server.contract import inference_pb2_grpc as pbg

    async with grpc.aio.insecure_channel(address) as ch:
        stub = pbg.InferenceStub(ch)
        lat: list[float] = []
        done = 0
        errors = 0
        t_start = time.perf_counter()
        t_measure = t_start + warmup_s
        t_end = t_measure + duration_s

        async def client(cid: int) -> None:
            nonlocal done, errors
            i = cid
            while True:
                now = time.perf_counter()
                if now >= t_end:
                    return
                req = pb.EncodeRequest(texts=[texts[i % len(texts)]])
                i += clients
                t0 = time.perf_counter()
                try:
                    await stub.Encode(req, timeout=30)
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                t1 = time.perf_counter()
                if t0 >= t_measure and t1 <= t_end:
                    lat.append(t1 - t0)
                    done += 1

        await asyncio.gather(*(client(c) for c in range(clients)))
    arr = np.array(lat) if lat else np.array([np.nan])
    return {"clients": clients, "texts_per_s": round(done / duration_s, 1), "p50_ms": round(float(np.percentile(arr, 50)) * 1000, 2),
            "p99_ms": round(float(np.percentile(arr, 99)) * 1000, 2), "calls": done, "errors": errors}


def to_markdown(report: dict[str, Any]) -> str:
    hw = report["hardware"]
    off = report["offline"]
    lines = [
        f"# Server benchmark ({report['timestamp']})",
        "",
        f"- hardware: {hw['cpu']}, {hw['cores']} cores, GPU: {hw['gpu'] or 'none'}; ONNX Runtime {hw['onnxruntime']}",
        f"- model: {off['encoder']}, concepts: {off['concepts']}, device: {off['device']}",
        f"- texts: {report['texts']['count']} short texts, mean {report['texts']['mean_tokens']:.1f} tokens; "
        f"{report['duration_s']} s per point, best of {report['rounds']} interleaved rounds",
        f"- batching: {report['batching']}",
        "",
        "## Offline runtime (no gRPC): tokenize + model + pooling + concept head",
        "",
        "| batch size | texts/s, length-sorted batches | texts/s, batches in arrival order |",
        "|---:|---:|---:|",
    ]
    for b, v in off["per_batch_size"].items():
        lines.append(f"| {b} | {v} | {off['per_batch_size_arrival_order'].get(b, '-')} |")
    lines += ["", f"Best: {off['best_texts_per_s']} texts/s (length-sorted, batch {off['best_batch_size']}); "
                  f"{off['best_arrival_order_texts_per_s']} texts/s in arrival order.", "",
              "## Through the server, one text per call", "",
              "| clients | batched texts/s | p50 ms | p99 ms | unbatched texts/s | p50 ms | p99 ms | batched/unbatched | batched/offline best |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    unb = {r["clients"]: r for r in report.get("unbatched", [])}
    for r in report["batched"]:
        u = unb.get(r["clients"], {})
        ratio = (r["texts_per_s"] / u["texts_per_s"]) if u.get("texts_per_s") else float("nan")
        lines.append(
            f"| {r['clients']} | {r['texts_per_s']} | {r['p50_ms']} | {r['p99_ms']} | {u.get('texts_per_s', '-')} | "
            f"{u.get('p50_ms', '-')} | {u.get('p99_ms', '-')} | {ratio:.2f} | {r['texts_per_s'] / off['best_texts_per_s']:.2f} |"
        )
    s = report["summary"]
    lines += ["", f"At {s['clients']} clients: {s['served_over_offline']:.2f} x offline best (length-sorted), "
                  f"{s['served_over_offline_arrival_order']:.2f} x offline best in arrival order, "
                  f"{s['batched_over_unbatched']:.2f} x unbatched. Offline best / offline batch 1 = "
                  f"{s['offline_best_over_batch1']:.2f} (the most batching can gain on this machine)."]
    return "\n".join(lines) + "\n"


def run_server_benchmark(
    config: ServerConfig | None = None,
    *,
    config_path: str | None = None,
    concurrency: tuple[int, ...] = (1, 8, 32),
    duration_s: float = 3.0,
    rounds: int = 3,
    warmup_s: float = 0.5,
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64),
    texts: list[str] | None = None,
    include_unbatched: bool = True,
    log_path: str | Path | None = None,
) -> dict[str, Any]:
    """Run the whole benchmark and return a report dict (``report["markdown"]`` holds the tables).

    Every point is measured ``rounds`` times, interleaved (offline sweep, then each concurrency
    level against the batched and the unbatched server), and the best round is kept: on a
    shared machine noise only ever slows a run down, and interleaving exposes all variants to
    the same conditions. All samples stay in the report.
    """
    cfg = config or load_config(config_path)
    texts = texts or default_texts()
    log = Path(log_path) if log_path else Path(tempfile.gettempdir()) / "sesa-bench-server.log"
    offline = OfflineRunner(cfg, texts)
    lens = [s.num_tokens for s in offline.enc.tokenize(texts[:500], False)]
    report: dict[str, Any] = {
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%S"),
        "server_version": __version__,
        "hardware": detect_hardware(),
        "texts": {"count": len(texts), "mean_tokens": float(np.mean(lens))},
        "duration_s": duration_s,
        "rounds": rounds,
        "batching": cfg.batching.model_dump(),
    }
    modes = {"batched": cfg}
    if include_unbatched:
        unb = cfg.model_copy(deep=True)
        unb.batching.max_batch_size = 1
        modes["unbatched"] = unb
    off_samples: dict[int, list[float]] = {b: [] for b in batch_sizes}
    arr_samples: dict[int, list[float]] = {b: [] for b in batch_sizes}
    served: dict[str, dict[int, list[dict[str, Any]]]] = {m: {c: [] for c in concurrency} for m in modes}
    servers = {m: ServerProcess(c, log) for m, c in modes.items()}
    try:
        for srv in servers.values():
            srv.__enter__()
        addresses = {m: f"{cfg.host}:{srv.port}" for m, srv in servers.items()}
        for addr in addresses.values():
            asyncio.run(_load(addr, texts, 2, 1.0, 0.5))  # warm up
        for _ in range(rounds):
            for b in batch_sizes:
                off_samples[b].append(offline.measure(b, duration_s, "sorted"))
                arr_samples[b].append(offline.measure(b, duration_s, "arrival"))
            for c in concurrency:
                for m, addr in addresses.items():
                    served[m][c].append(asyncio.run(_load(addr, texts, c, duration_s, warmup_s)))
    finally:
        for srv in servers.values():
            srv.__exit__(None, None, None)
    per_b = {b: max(v) for b, v in off_samples.items()}
    per_b_arr = {b: max(v) for b, v in arr_samples.items()}
    best_b = max(per_b, key=per_b.get)  # type: ignore[arg-type]
    best_arr = max(per_b_arr, key=per_b_arr.get)  # type: ignore[arg-type]
    report["offline"] = {"per_batch_size": {str(b): round(v, 1) for b, v in per_b.items()},
                         "per_batch_size_arrival_order": {str(b): round(v, 1) for b, v in per_b_arr.items()},
                         "samples": {str(b): [round(x, 1) for x in v] for b, v in off_samples.items()},
                         "best_batch_size": best_b, "best_texts_per_s": round(per_b[best_b], 1),
                         "best_arrival_order_texts_per_s": round(per_b_arr[best_arr], 1),
                         **offline.describe()}
    for m in modes:
        report[m] = []
        for c in concurrency:
            best = max(served[m][c], key=lambda r: r["texts_per_s"])
            report[m].append({**best, "samples_texts_per_s": [r["texts_per_s"] for r in served[m][c]]})
    top = max(concurrency)
    b = next(r for r in report["batched"] if r["clients"] == top)
    u = next((r for r in report.get("unbatched", []) if r["clients"] == top), None)
    per_b = dict(per_b)
    report["summary"] = {
        "clients": top,
        "served_texts_per_s": b["texts_per_s"],
        "offline_best_texts_per_s": report["offline"]["best_texts_per_s"],
        "offline_batch1_texts_per_s": round(per_b.get(1, float("nan")), 1),
        "served_over_offline": b["texts_per_s"] / report["offline"]["best_texts_per_s"],
        "served_over_offline_arrival_order": b["texts_per_s"] / report["offline"]["best_arrival_order_texts_per_s"],
        "batched_over_unbatched": (b["texts_per_s"] / u["texts_per_s"]) if u and u["texts_per_s"] else float("nan"),
        "offline_best_over_batch1": per_b[best_b] / per_b[1] if per_b.get(1) else float("nan"),
    }
    report["markdown"] = to_markdown(report)
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="SESA inference server benchmark (offline vs served, batched vs not)")
    p.add_argument("--config", help="server YAML config (default: built-in defaults)")
    p.add_argument("--duration", type=float, default=3.0, help="seconds per measurement point and round")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best round per point is kept")
    p.add_argument("--clients", default="1,8,32", help="comma-separated concurrency levels")
    p.add_argument("--batch-sizes", default="1,2,4,8,16,32,64")
    p.add_argument("--no-unbatched", action="store_true")
    p.add_argument("--json", help="write the report dict here")
    p.add_argument("--markdown", help="write the markdown table here")
    a = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from inference_server.metrics import setup_logging

    setup_logging("WARNING")
    rep = run_server_benchmark(
        config_path=a.config, duration_s=a.duration, rounds=a.rounds, concurrency=tuple(int(x) for x in a.clients.split(",")),
        batch_sizes=tuple(int(x) for x in a.batch_sizes.split(",")), include_unbatched=not a.no_unbatched,
    )
    if a.json:
        Path(a.json).write_text(json.dumps(rep, indent=2, default=str), encoding="utf-8")
    if a.markdown:
        Path(a.markdown).write_text(rep["markdown"], encoding="utf-8")
    print(rep["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
