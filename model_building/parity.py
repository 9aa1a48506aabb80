"""ONNX Runtime vs PyTorch parity for an exported model (needs torch + transformers).

Why: an export can silently change numerics (dropout left on, wrong inputs, attention masks);
comparing both runtimes on real text catches that before a model is served.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from inference_server.model_store import ExportedModel
from inference_server.runtime.backend import OrtBackend, choose_device
from inference_server.tokenization import TextTokenizer, pad_batch
from model_building.export import torch_wrapper

DEFAULT_TEXTS = [
    "how do vaccines work",
    "Vaccines train the immune system to recognise a pathogen without causing the disease.",
    "manage musical staff",
    "A much longer passage about software development, testing and the deployment of machine learning "
    "models to production systems, with monitoring, rollback and on-call duties. " * 3,
]


def parity_report(model: ExportedModel, texts: list[str] | None = None, source_dir: str | Path | None = None) -> dict[str, Any]:
    """Max absolute difference between ORT and torch outputs on ``texts``."""
    import torch

    src = Path(source_dir or model.manifest.get("source_dir") or model.manifest["source"])
    if not (src / "config.json").is_file():
        from inference_server import paths

        src = paths.builtin_encoder_dir()
    texts = texts or DEFAULT_TEXTS
    tok = TextTokenizer(model.tokenizer_path, model.max_sequence_length)
    if model.role == "encoder":
        seqs = tok.encode(texts, 256)
    else:
        seqs = tok.encode_pairs([texts[0]] * len(texts), texts, 256)
    batch = pad_batch(seqs, tok.pad_id)
    ort_backend = OrtBackend(str(model.onnx_path), choose_device("cpu", "fp32"))
    wrapper = torch_wrapper(src, model.role)
    with torch.no_grad():
        out = wrapper(**{k: torch.from_numpy(v) for k, v in batch.items()})
    if model.role == "encoder":
        ref = out[1].numpy()
        got = ort_backend.encode(batch)
        cos = float(np.min(np.sum(ref * got, axis=1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))))
    else:
        ref = out.numpy()
        ref = ref[:, 0] if ref.shape[1] == 1 else ref[:, 1] - ref[:, 0]
        got = ort_backend.score(batch)
        cos = float("nan")
    return {"role": model.role, "onnx": str(model.onnx_path), "texts": len(texts),
            "max_abs_diff": float(np.max(np.abs(ref - got))), "min_cosine": cos}
