"""Export encoders and cross-encoders to ONNX once, cache them, and resolve model specs.

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
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from inference_server import paths

log = logging.getLogger(__name__)


def quantize_int8(src: str | Path, dst: str | Path) -> None:
    """Per-channel dynamic int8 quantisation of an ONNX file.

    onnxruntime.quantization logs one INFO line per tensor through the root logger (hundreds per model,
    drowning a training log), so the root logger stays at WARNING for the duration of the call.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        quantize_dynamic(str(src), str(dst), per_channel=True, weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)

EXPORT_FORMAT_VERSION = 1
OPSET = 17
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "config.json",
)


class ModelResolutionError(RuntimeError):
    """A configured model cannot be found, exported or loaded; the message says what to do."""


@dataclass
class ExportedModel:
    role: str  # "encoder" | "reranker"
    onnx_path: Path
    tokenizer_path: Path
    manifest: dict[str, Any]

    @property
    def model_id(self) -> str:
        # a trained artifact names itself (e.g. sesa-reranker-minilm-l6-scifact); an export is named by its base
        return str(self.manifest.get("name") or self.manifest.get("base_model") or self.onnx_path.parent.name)

    @property
    def precision(self) -> str:
        """The precision the ONNX file was written in (an int8 artifact says so in its manifest)."""
        return str(self.manifest.get("precision") or "fp32")

    @property
    def version(self) -> str:
        return str(self.manifest.get("version") or self.manifest.get("onnx_sha256", "")[:12] or "0")

    @property
    def max_sequence_length(self) -> int:
        return int(self.manifest.get("max_sequence_length") or 512)

    @property
    def source(self) -> str:
        return str(self.manifest.get("source", self.onnx_path))


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", s).strip("-").lower()[:60] or "model"


def _read_json(p: Path) -> dict:
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _licence_of(model_dir: Path) -> str:
    readme = model_dir / "README.md"
    if readme.is_file():
        m = re.search(r"^licen[cs]e:\s*(\S+)", readme.read_text(encoding="utf-8", errors="replace"), re.M | re.I)
        if m:
            return m.group(1)
    return "unknown (no licence in the model card)"


def source_fingerprint(model_dir: Path, role: str) -> str:
    """sha256 over weights + config + export format: the cache key of an HF model dir."""
    import hashlib

    h = hashlib.sha256(f"{role}:{EXPORT_FORMAT_VERSION}:{OPSET}".encode())
    weights = sorted(
        p for p in model_dir.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file()
    )
    if not weights:
        raise ModelResolutionError(f"no model weights (*.safetensors or *.bin) in {model_dir}")
    for p in weights + [model_dir / "config.json"]:
        h.update(p.name.encode())
        h.update(paths.sha256_file(p).encode())
    return h.hexdigest()


def _entry_for(model_dir: Path, role: str, base: str, cache_dir: str | Path | None, fp: str | None = None) -> Path:
    fp = fp or source_fingerprint(model_dir, role)
    return default_cache_dir(cache_dir) / f"{role}-{_slug(base.split('/')[-1])}-{fp[:12]}"


def default_cache_dir(cache_dir: str | Path | None = None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir else paths.models_cache()


def _load_cached(entry: Path, role: str) -> ExportedModel | None:
    manifest = _read_json(entry / "manifest.json")
    onnx_path = entry / "model.onnx"
    if manifest.get("role") == role and onnx_path.is_file() and (entry / "tokenizer.json").is_file():
        return ExportedModel(role, onnx_path, entry / "tokenizer.json", manifest)
    return None


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


class _EncoderWrapper:  # built lazily so importing this module does not import torch
    @staticmethod
    def build(model: Any) -> Any:
        import torch

        class EncoderForExport(torch.nn.Module):
            """Keyword-argument forward: token states + mean-pooled, L2-normalised embedding."""

            def __init__(self, m: Any):
                super().__init__()
                self.m = m

            def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
                h = self.m(
                    input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
                ).last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(h.dtype)
                pooled = (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                return h, torch.nn.functional.normalize(pooled, p=2.0, dim=1)

        return EncoderForExport(model).eval()


def _reranker_wrapper(model: Any) -> Any:
    import torch

    class RerankerForExport(torch.nn.Module):
        """Keyword-argument forward returning the classification logits ([batch, 1])."""

        def __init__(self, m: Any):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            out = self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out if isinstance(out, torch.Tensor) else out.logits

    return RerankerForExport(model).eval()


def _load_hf(model_dir: Path, role: str) -> Any:
    torch, transformers = _require_torch()
    if role == "reranker":
        from inference_server import segment_cross_encoder

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
    return _EncoderWrapper.build(model) if role == "encoder" else _reranker_wrapper(model)


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
    cfg = _read_json(model_dir / "config.json")
    base = base_model or cfg.get("_name_or_path") or model_dir.name
    fp = source_fingerprint(model_dir, role)
    entry = _entry_for(model_dir, role, str(base), cache_dir, fp)
    if not force:
        cached = _load_cached(entry, role)
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


def _onnx_file_model(onnx_file: Path, role: str, tokenizer: str | None) -> ExportedModel:
    from inference_server.tokenization import resolve_tokenizer_file

    try:
        tok = resolve_tokenizer_file(tokenizer or onnx_file.parent)
    except FileNotFoundError:
        raise ModelResolutionError(
            f"{role} {onnx_file} has no tokenizer.json next to it; set models.{role}_tokenizer"
        ) from None
    manifest = _read_json(onnx_file.parent / "manifest.json")
    if manifest.get("role") != role or manifest.get("onnx_sha256") is None:
        cfg = _read_json(tok.parent / "config.json")
        sha = paths.sha256_file(onnx_file)
        manifest = {
            "role": role,
            "base_model": cfg.get("_name_or_path") or onnx_file.parent.name,
            "version": sha[:12],
            "source": str(onnx_file),
            "onnx_sha256": sha,
            "precision": "fp32",
            "max_sequence_length": int(cfg.get("max_position_embeddings", 512)),
            "licence": "unknown",
        }
    return ExportedModel(role, onnx_file, tok, manifest)


def resolve_model(
    spec: str | None,
    role: str,
    *,
    tokenizer: str | None = None,
    cache_dir: str | Path | None = None,
    auto_export: bool = True,
) -> ExportedModel:
    """Turn a config value into a loadable ONNX model.

    ``spec``: None (built-in encoder), an ``.onnx`` file, an export dir (with model.onnx and
    manifest.json) or a Hugging Face model dir (exported on first use when ``auto_export``).
    """
    if spec is None:
        if role != "encoder":
            raise ModelResolutionError(f"no {role} configured")
        if not auto_export:
            d = paths.builtin_encoder_dir()
            cached = _load_cached(_entry_for(d, role, paths.BUILTIN_ENCODER_ID, cache_dir), role)
            if cached is None:
                raise ModelResolutionError("built-in encoder is not exported yet: run `sesa-server export`")
            return cached
        return export_builtin_encoder(cache_dir)
    p = Path(spec).expanduser()
    if p.suffix == ".onnx":
        if not p.is_file():
            raise ModelResolutionError(f"{role} ONNX file not found: {p}")
        return _onnx_file_model(p, role, tokenizer)
    if not p.is_dir():
        raise ModelResolutionError(f"{role} not found: {p} (expected an HF model dir, an export dir or an .onnx file)")
    cached = _load_cached(p, role)
    if cached is not None:
        return cached
    if (p / "model.onnx").is_file() and not (p / "config.json").is_file():
        return _onnx_file_model(p / "model.onnx", role, tokenizer)
    if not auto_export:
        raise ModelResolutionError(f"{role} {p} is an HF dir that is not exported: run `sesa-server export --{role} {p}`")
    return export_hf_dir(p, role, cache_dir)


def derive_precision(model: ExportedModel, precision: str, cache_dir: str | Path | None = None) -> Path:
    """ONNX file for the wanted precision: fp32 as is; int8 (dynamic, per-channel) and fp16
    variants are derived once and cached next to the export (or in the cache for foreign files)."""
    if precision in ("fp32", "auto"):
        return model.onnx_path
    if model.precision != "fp32":
        # e.g. the repository's int8 reranker: quantising or halving it again would not give the wanted
        # precision (and can break the graph), so it is served as it was exported.
        if model.precision != precision:
            log.warning("%s %s is already %s: serving it as is, not as %s", model.role, model.onnx_path,
                        model.precision, precision)
        return model.onnx_path
    sha = str(model.manifest.get("onnx_sha256") or paths.sha256_file(model.onnx_path))
    base = model.onnx_path.parent
    if not os.access(base, os.W_OK):
        base = default_cache_dir(cache_dir) / f"derived-{sha[:12]}"
        base.mkdir(parents=True, exist_ok=True)
    target = base / f"model.{precision}.onnx"
    if target.is_file():
        return target
    tmp = target.with_suffix(".tmp.onnx")
    if precision == "int8":
        quantize_int8(model.onnx_path, tmp)
    elif precision == "fp16":
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        m = convert_float_to_float16(onnx.load(str(model.onnx_path)), keep_io_types=True)
        onnx.save(m, str(tmp))
    else:
        raise ModelResolutionError(f"unknown precision {precision!r}")
    os.replace(tmp, target)
    return target


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
