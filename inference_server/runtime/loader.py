"""Build the runtimes a config asks for (encoder + concept head, optional reranker)."""

from __future__ import annotations

import dataclasses
import logging
import weakref
from dataclasses import dataclass
from typing import Any, Callable

from inference_server.config import ServerConfig
from inference_server.model_store import (
    ExportedModel,
    ModelResolutionError,
    default_cache_dir,
    derive_precision,
    resolve_model,
)
from inference_server.runtime import cpu_features
from inference_server.runtime.backend import DeviceChoice, ModelBackend, choose_device, make_backend
from inference_server.runtime.concept_space import resolve_concept_space
from inference_server.runtime.domain import DomainBankError, load_domain_bank
from inference_server.runtime.encoder import EncoderRuntime, ModelMeta
from inference_server.runtime.reranker import RerankerRuntime
from inference_server.tokenization import TextTokenizer

log = logging.getLogger(__name__)


@dataclass
class Runtimes:
    device: DeviceChoice
    encoder: EncoderRuntime
    reranker: RerankerRuntime | None


def _meta(model: ExportedModel, backend: ModelBackend, role: str) -> ModelMeta:
    dim = int(model.manifest.get("dimension") or getattr(backend, "dimension", 0) or 0)
    return ModelMeta(
        role=role,
        model_id=model.model_id,
        version=model.version,
        dimension=dim if role == "encoder" else 0,
        precision=backend.precision,
        engine=backend.engine,
        reason=backend.reason,
        max_sequence_length=model.max_sequence_length,
        source=model.source,
    )


def _backend(model: ExportedModel, cfg: ServerConfig, choice: DeviceChoice) -> ModelBackend:
    if model.precision != "fp32" and model.precision != choice.precision:
        # an export that is already int8 (the shipped reranker) runs as what it is, on ONNX Runtime: int8 also
        # means one unpadded sequence per call, so a pair's score does not depend on its batch
        reason = f"the export is already {model.precision}: served as it is (was: {choice.reason})"
        choice = dataclasses.replace(choice, precision=model.precision, engine="onnxruntime",
                                     providers=["CPUExecutionProvider"] if choice.kind == "cpu" else choice.providers,
                                     reason=reason)
    path = derive_precision(model, choice.precision, cfg.models.cache_dir)
    backend = make_backend(str(path), choice, threads=cfg.runtime.intra_op_threads,
                           cuda_device_id=cfg.runtime.cuda_device_id, allow_spinning=cfg.runtime.allow_spinning,
                           cache_dir=str(default_cache_dir(cfg.models.cache_dir) / "openvino"))
    log.info("%s %s: %s %s on %s (%s)", model.role, model.model_id, choice.engine, choice.precision,
             choice.description, choice.reason)
    return backend


_QUERY_MEMO: "weakref.WeakKeyDictionary[EncoderRuntime, dict]" = weakref.WeakKeyDictionary()


def query_embedder(enc: EncoderRuntime) -> Callable[[list[str]], Any]:
    """Query embeddings from the serving encoder, memoised per text list (the reranker and the concept head of
    one server usually ship the same training queries: embed them once)."""
    memo = _QUERY_MEMO.setdefault(enc, {})

    def embed(texts: list[str]) -> Any:
        key = tuple(texts)
        if key not in memo:
            memo[key] = enc.embed(texts, query=True)
        return memo[key]

    return embed


def _domain_bank(what: str, directory, manifest: dict, enc: EncoderRuntime, setting: str):
    """A trained model's domain bank, calibrated on ``enc``; a damaged bank stops start-up naming the model."""
    try:
        return load_domain_bank(directory, manifest, query_embedder(enc))
    except DomainBankError as e:
        raise ModelResolutionError(f"{what}: {e} (set {setting}: false to serve without domain checks)") from e


def _load_space(cfg: ServerConfig, spec: str, enc: EncoderRuntime, progress_factory: Callable | None):
    """One concept space (artifact dir or pack name) for ``enc``, with its domain bank when it ships one."""
    head = resolve_concept_space(spec, enc, min_weight=cfg.concepts.min_weight,
                                 build_missing=cfg.models.build_missing_concepts, progress_factory=progress_factory)
    if head is not None and head.dimension != enc.meta.dimension:
        raise ValueError(f"concept space dimension {head.dimension} != encoder dimension {enc.meta.dimension}")
    if head is not None and cfg.concepts.domain_check and head.directory is not None:
        head.domain = _domain_bank(f"concept space {head.directory}", head.directory, head.manifest, enc,
                                   "concepts.domain_check")
    return head


def load_encoder(cfg: ServerConfig, choice: DeviceChoice | None = None, with_concepts: bool = True,
                 progress_factory: Callable | None = None) -> EncoderRuntime:
    choice = choice or choose_device(cfg.runtime.device, cfg.runtime.precision, cfg.runtime.intra_op_threads,
                                     cfg.runtime.cuda_device_id, engine=cfg.runtime.engine)
    model = resolve_model(cfg.models.encoder, "encoder", tokenizer=cfg.models.encoder_tokenizer,
                          cache_dir=cfg.models.cache_dir, auto_export=cfg.models.auto_export)
    backend = _backend(model, cfg, choice)
    tok = TextTokenizer(model.tokenizer_path, model.max_sequence_length)
    enc = EncoderRuntime(backend, tok, _meta(model, backend, "encoder"), None,
                         cfg.limits.query_max_tokens, cfg.limits.passage_max_tokens)
    if enc.meta.dimension == 0:  # foreign ONNX without a static dim: probe once
        import numpy as np

        probe = tok.encode(["probe"], 8)
        enc.meta.dimension = int(backend.encode({"input_ids": probe[0].ids[None], "attention_mask":
                                                 np.ones_like(probe[0].ids)[None],
                                                 "token_type_ids": probe[0].type_ids[None]}).shape[1])
    if with_concepts and cfg.models.concept_space:
        enc.head = _load_space(cfg, cfg.models.concept_space, enc, progress_factory)
    if with_concepts:
        for spec in cfg.models.extra_concept_spaces:
            head = _load_space(cfg, spec, enc, progress_factory)
            if head is not None:
                enc.add_space(head)
    return enc


def load_reranker(cfg: ServerConfig, choice: DeviceChoice | None = None) -> RerankerRuntime | None:
    if not cfg.models.reranker:
        return None
    choice = choice or choose_device(cfg.runtime.device, cfg.runtime.precision, cfg.runtime.intra_op_threads,
                                     cfg.runtime.cuda_device_id, role="reranker", engine=cfg.runtime.engine)
    model = resolve_model(cfg.models.reranker, "reranker", tokenizer=cfg.models.reranker_tokenizer,
                          cache_dir=cfg.models.cache_dir, auto_export=cfg.models.auto_export)
    backend = _backend(model, cfg, choice)
    tok = TextTokenizer(model.tokenizer_path, model.max_sequence_length)
    rt = RerankerRuntime(backend, tok, _meta(model, backend, "reranker"), cfg.rerank.max_tokens,
                         cfg.rerank.query_max_tokens, cfg.rerank.chunk_overlap_tokens)
    rt.model_dir, rt.manifest = model.onnx_path.parent, model.manifest
    return rt


def load_runtimes(cfg: ServerConfig, progress_factory: Callable | None = None) -> Runtimes:
    choice = choose_device(cfg.runtime.device, cfg.runtime.precision, cfg.runtime.intra_op_threads,
                           cfg.runtime.cuda_device_id, engine=cfg.runtime.engine)
    rerank_choice = choose_device(cfg.runtime.device, cfg.runtime.precision, cfg.runtime.intra_op_threads,
                                  cfg.runtime.cuda_device_id, role="reranker", engine=cfg.runtime.engine)
    if choice.kind == "cpu":
        log.info("CPU instruction sets: %s", cpu_features.detect().describe())
    enc = load_encoder(cfg, choice, progress_factory=progress_factory)
    rr = load_reranker(cfg, rerank_choice)
    if rr is not None and cfg.rerank.domain_check and rr.model_dir is not None:
        rr.domain = _domain_bank(f"reranker {rr.model_dir}", rr.model_dir, rr.manifest, enc, "rerank.domain_check")
    return Runtimes(choice, enc, rr)
