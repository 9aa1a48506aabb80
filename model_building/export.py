"""Export encoders and cross-encoders to ONNX once, cache them, (resolving a configured model spec is the server's job: ``inference_server.model_store``).

Why ONNX: serving then needs only ONNX Runtime (no torch), and ORT is ~4x faster than eager
PyTorch on a small CPU. Why a cache keyed by the weights' sha256: a second start (or a
second ``sesa-server export``) is instant and never re-exports a model that did not change.

Export details that matter (see the project notes): inputs go through a keyword-argument
wrapper module (positional arguments collide with ``use_cache`` in transformers 5), the model
is put in ``.eval()`` (otherwise dropout leaks in), attention is exported in "eager" form so
ORT can fuse it, opset 17, dynamic batch and sequence axes. The encoder graph outputs both
token states and the mean-pooled, L2-normalised sentence embedding, so the server reads the
pooled vector straight from the one forward pass.

Each cache entry holds ``model.onnx``, the tokenizer files and ``manifest.json`` (sha256 of
source and ONNX, base model, licence, versions).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from inference_server import paths
from inference_server.model_store import (
    EXPORT_FORMAT_VERSION,
    OPSET,
    TOKENIZER_FILES,
    ExportedModel,
    ModelResolutionError,
    cache_entry_dir,
    load_cached_export,
    read_json,
    resolve_model,
    source_fingerprint,
)

log = logging.getLogger(__name__)


def _licence_of(model_dir: Path) -> str:
    readme = model_dir / "README.md"
    if readme.is_file():
        m = re.search(r"^licen[cs]e:\s*(\S+)", readme.read_text(encoding="utf-8", errors="replace"), re.M | re.I)
        if m:
            return m.group(1)
    return "unknown (no licence in the model card)"


def _require_torch() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ModelResolutionError(
            f"exporting to ONNX needs torch and transformers ({e.name} is missing): "
            "pip install 'opensearch-sesa[train]', or run `sesa-server export` where they are installed "
            "and copy the cache, or point the config at an .onnx file"
        ) from None
    return torch, transformers


def _export_wrapper(model: Any, role: str) -> Any:
    """The model behind a keyword-argument forward (positional arguments collide with ``use_cache`` in
    transformers 5), in eval mode. Encoder: token states + mean-pooled, L2-normalised embedding; reranker: the
    classification logits ([batch, 1]). Built lazily so importing this module does not import torch."""
    import torch

    def encoder_outputs(m: Any, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
        h = m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return h, torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    def reranker_outputs(m: Any, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
        out = m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return out if isinstance(out, torch.Tensor) else out.logits

    outputs = encoder_outputs if role == "encoder" else reranker_outputs

    class ForExport(torch.nn.Module):
        def __init__(self, m: Any):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            return outputs(self.m, input_ids, attention_mask, token_type_ids)

    return ForExport(model).eval()


def _load_hf(model_dir: Path, role: str) -> Any:
    torch, transformers = _require_torch()
    if role == "reranker":
        from model_building import segment_cross_encoder

        if segment_cross_encoder.is_segment_cross_encoder(model_dir):
            return _load_eager(segment_cross_encoder.load, model_dir)
    cls = transformers.AutoModel if role == "encoder" else transformers.AutoModelForSequenceClassification
    return _load_eager(lambda d, **kw: cls.from_pretrained(str(d), **kw), model_dir)


def _load_eager(loader: Callable[..., Any], model_dir: Path) -> Any:
    """Eager attention where the model supports it (ORT fuses it; the SDPA export is not fused)."""
    try:
        model = loader(model_dir, attn_implementation="eager")
    except (TypeError, ValueError):
        model = loader(model_dir)
    return model.eval()


def torch_wrapper(model_dir: Path, role: str) -> Any:
    """The exact torch module we export (used by the parity test)."""
    model = _load_hf(model_dir, role)
    return _export_wrapper(model, role)


def _export(model_dir: Path, role: str, out: Path) -> dict[str, Any]:
    torch, transformers = _require_torch()
    wrapper = torch_wrapper(model_dir, role)
    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102], [101, 2178, 102, 0, 0, 0]], dtype=torch.long)
    vocab = int(getattr(wrapper.m.config, "vocab_size", 30522))
    ids = ids.clamp(max=vocab - 1)
    mask = (ids != 0).long()
    mask[:, 0] = 1
    types = torch.zeros_like(ids)
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
            "token_type_ids": {0: "batch", 1: "sequence"}}
    if role == "encoder":
        outputs = ["last_hidden_state", "sentence_embedding"]
        axes.update({"last_hidden_state": {0: "batch", 1: "sequence"}, "sentence_embedding": {0: "batch"}})
    else:
        outputs = ["logits"]
        axes["logits"] = {0: "batch"}
    import warnings

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (),
            str(out / "model.onnx"),
            kwargs={"input_ids": ids, "attention_mask": mask, "token_type_ids": types},
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    cfg = wrapper.m.config
    return {
        "outputs": outputs,
        "dimension": int(getattr(cfg, "hidden_size", 0)) if role == "encoder" else 0,
        "num_labels": int(getattr(cfg, "num_labels", 1)) if role == "reranker" else 0,
        "max_sequence_length": int(getattr(cfg, "max_position_embeddings", 512)),
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
    }


def export_hf_dir(
    model_dir: str | Path,
    role: str,
    cache_dir: str | Path | None = None,
    *,
    force: bool = False,
    base_model: str | None = None,
    licence: str | None = None,
    source: str | None = None,
) -> ExportedModel:
    """Export an HF model dir (encoder: AutoModel; reranker: sequence classification) to ONNX.

    Returns the cached export when the same weights were exported before (instant).
    """
    model_dir = Path(model_dir).expanduser().resolve()
    if not (model_dir / "config.json").is_file():
        raise ModelResolutionError(f"{model_dir} is not a Hugging Face model dir (no config.json)")
    if not (model_dir / "tokenizer.json").is_file():
        raise ModelResolutionError(f"{model_dir} has no tokenizer.json (a fast tokenizer file is required)")
    cfg = read_json(model_dir / "config.json")
    base = base_model or cfg.get("_name_or_path") or model_dir.name
    fp = source_fingerprint(model_dir, role)
    entry = cache_entry_dir(model_dir, role, str(base), cache_dir, fp)
    if not force:
        cached = load_cached_export(entry, role)
        if cached is not None:
            return cached
    entry.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    log.info("exporting %s %s to ONNX (one-time, cached in %s)", role, model_dir, entry)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
    try:
        info = _export(model_dir, role, tmp)
        for name in TOKENIZER_FILES:
            if (model_dir / name).is_file():
                shutil.copy2(model_dir / name, tmp / name)
        onnx_sha = paths.sha256_file(tmp / "model.onnx")
        manifest = {
            "format_version": EXPORT_FORMAT_VERSION,
            "role": role,
            "base_model": str(base),
            "version": onnx_sha[:12],
            "source": source or str(model_dir),
            "source_dir": str(model_dir),
            "source_sha256": fp,
            "onnx_sha256": onnx_sha,
            "opset": OPSET,
            "precision": "fp32",
            "licence": licence or _licence_of(model_dir),
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "export_seconds": round(time.perf_counter() - t0, 2),
            **info,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        paths.publish_dir(tmp, entry)  # 0755/0644: the server may run as another user
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("exported %s in %.1fs: %s", role, time.perf_counter() - t0, entry / "model.onnx")
    return ExportedModel(role, entry / "model.onnx", entry / "tokenizer.json", manifest)


def export_builtin_encoder(cache_dir: str | Path | None = None, force: bool = False) -> ExportedModel:
    d = paths.builtin_encoder_dir()
    return export_hf_dir(
        d,
        "encoder",
        cache_dir,
        force=force,
        base_model=paths.BUILTIN_ENCODER_ID,
        licence=paths.BUILTIN_ENCODER_LICENCE,
        source=f"{paths.BUILTIN_ENCODER_PACKAGE}=={paths.package_version(paths.BUILTIN_ENCODER_PACKAGE)}",
    )



def export_all(
    encoder: str | None = None,
    reranker: str | None = None,
    cache_dir: str | Path | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[ExportedModel]:
    """What ``sesa-server export`` does: the encoder (built-in unless given) and an optional reranker."""
    out = []
    say = progress or (lambda s: None)
    say("encoder: " + (encoder or paths.BUILTIN_ENCODER_ID))
    if encoder is None:
        out.append(export_builtin_encoder(cache_dir, force=force))
    elif Path(encoder).suffix == ".onnx":
        out.append(resolve_model(encoder, "encoder", cache_dir=cache_dir))
    else:
        out.append(export_hf_dir(encoder, "encoder", cache_dir, force=force))
    if reranker:
        say("reranker: " + reranker)
        if Path(reranker).suffix == ".onnx":
            out.append(resolve_model(reranker, "reranker", cache_dir=cache_dir))
        else:
            out.append(export_hf_dir(reranker, "reranker", cache_dir, force=force))
    return out
