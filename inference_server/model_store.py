"""The model cache the server loads from: exported ONNX models, their manifests and derived precisions.

A config value (None for the built-in encoder, an ``.onnx`` file, an export dir or a Hugging Face dir) becomes
an :class:`ExportedModel`. Exports are keyed by the sha256 of the weights, so a second start is instant and a
changed model is never served stale. Making an export (torch) or a derived int8/fp16 file is model building's
job (``model_building.export``, ``model_building.quantize``); the server calls it only on a cache miss, when the
config allows (``models.auto_export``).
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference_server import paths

log = logging.getLogger(__name__)

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


def slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", s).strip("-").lower()[:60] or "model"


def read_json(p: Path) -> dict:
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


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


def cache_entry_dir(model_dir: Path, role: str, base: str, cache_dir: str | Path | None, fp: str | None = None) -> Path:
    fp = fp or source_fingerprint(model_dir, role)
    return default_cache_dir(cache_dir) / f"{role}-{slug(base.split('/')[-1])}-{fp[:12]}"


def default_cache_dir(cache_dir: str | Path | None = None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir else paths.models_cache()


def load_cached_export(entry: Path, role: str) -> ExportedModel | None:
    manifest = read_json(entry / "manifest.json")
    onnx_path = entry / "model.onnx"
    if manifest.get("role") == role and onnx_path.is_file() and (entry / "tokenizer.json").is_file():
        return ExportedModel(role, onnx_path, entry / "tokenizer.json", manifest)
    return None


def onnx_file_model(onnx_file: Path, role: str, tokenizer: str | None) -> ExportedModel:
    from inference_server.tokenization import resolve_tokenizer_file

    try:
        tok = resolve_tokenizer_file(tokenizer or onnx_file.parent)
    except FileNotFoundError:
        raise ModelResolutionError(
            f"{role} {onnx_file} has no tokenizer.json next to it; set models.{role}_tokenizer"
        ) from None
    manifest = read_json(onnx_file.parent / "manifest.json")
    if manifest.get("role") != role or manifest.get("onnx_sha256") is None:
        cfg = read_json(tok.parent / "config.json")
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
        cached = cached_hf_export(paths.builtin_encoder_dir(), role, cache_dir, base_model=paths.BUILTIN_ENCODER_ID)
        if cached is not None:
            return cached
        if not auto_export:
            raise ModelResolutionError("built-in encoder is not exported yet: run `sesa-server export`")
        from model_building.export import export_builtin_encoder

        return export_builtin_encoder(cache_dir)
    p = Path(spec).expanduser()
    if p.suffix == ".onnx":
        if not p.is_file():
            raise ModelResolutionError(f"{role} ONNX file not found: {p}")
        return onnx_file_model(p, role, tokenizer)
    if not p.is_dir():
        raise ModelResolutionError(f"{role} not found: {p} (expected an HF model dir, an export dir or an .onnx file)")
    cached = load_cached_export(p, role)
    if cached is not None:
        return cached
    if (p / "model.onnx").is_file() and not (p / "config.json").is_file():
        return onnx_file_model(p / "model.onnx", role, tokenizer)
    cached = cached_hf_export(p, role, cache_dir)
    if cached is not None:
        return cached
    if not auto_export:
        raise ModelResolutionError(f"{role} {p} is an HF dir that is not exported: run `sesa-server export --{role} {p}`")
    from model_building.export import export_hf_dir

    return export_hf_dir(p, role, cache_dir)


def cached_hf_export(model_dir: str | Path, role: str, cache_dir: str | Path | None = None,
                     base_model: str | None = None) -> ExportedModel | None:
    """The cached export of an HF model dir's current weights, or None (exporting is model building's job).
    The cache entry is named as ``model_building.export.export_hf_dir`` names it: base model + weights' sha."""
    model_dir = Path(model_dir).expanduser().resolve()
    if not (model_dir / "config.json").is_file():
        return None
    base = base_model or read_json(model_dir / "config.json").get("_name_or_path") or model_dir.name
    try:
        return load_cached_export(cache_entry_dir(model_dir, role, str(base), cache_dir), role)
    except ModelResolutionError:  # no weights: the exporter says so
        return None


def derive_precision(model: ExportedModel, precision: str, cache_dir: str | Path | None = None) -> Path:
    """ONNX file for the wanted precision: fp32 as is; int8 (dynamic, per-channel) and fp16
    variants are derived once and cached next to the export (or in the cache for foreign files); bf16 is the
    fp32 file too (OpenVINO turns it to bf16 when it compiles it)."""
    if precision in ("fp32", "auto", "bf16") and model.precision == "fp32":
        return model.onnx_path
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
        from model_building.quantize import quantize_int8

        quantize_int8(model.onnx_path, tmp)
    elif precision == "fp16":
        from model_building.quantize import convert_fp16

        convert_fp16(model.onnx_path, tmp)
    else:
        raise ModelResolutionError(f"unknown precision {precision!r}")
    os.replace(tmp, target)
    return target
