"""Model backends behind one small interface: token batch in, pooled vectors or logits out.

Why an interface: the batcher and the service never see ONNX Runtime, so another backend
(OpenVINO, TensorRT, a fake for tests) only has to implement ``encode`` and ``score``.
The ONNX Runtime backend uses CUDAExecutionProvider (fp16) when a GPU and onnxruntime-gpu are
present, otherwise the CPU provider with ``intra_op_num_threads`` = cores (spinning on: on a
2-core box turning it off costs 5-30% at small batches).
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


class BackendError(RuntimeError):
    """The backend cannot be created for this device/model; message says why."""


class ModelBackend(ABC):
    """One loaded model. ``batch`` holds int64 arrays input_ids / attention_mask / token_type_ids."""

    device: str = "cpu"
    providers: list[str] = []
    precision: str = "fp32"

    @abstractmethod
    def encode(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """Mean-pooled, L2-normalised embeddings [B, dim] (float32)."""

    @abstractmethod
    def score(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """One relevance logit per row [B] (float32)."""


@dataclass(frozen=True)
class DeviceChoice:
    kind: str  # "cpu" | "cuda"
    description: str
    providers: list[str]
    precision: str


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def gpu_name(device_id: int) -> str | None:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name", "--format=csv,noheader", f"--id={device_id}"],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    name = out.stdout.strip().splitlines()
    return name[0] if out.returncode == 0 and name else None


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


# What `precision: auto` means per device and role. On the CPU the encoder runs int8 (per-channel dynamic
# quantization of our own export): SciFact hybrid nDCG@10 stays within 0.005 of fp32 and it encodes ~1.4x
# faster. Dynamic int8 takes one activation scale per call, so the backend runs each sequence unpadded on its
# own (OrtBackend.per_sequence) and a text's vector depends on the text alone, as stored-vector = Encode needs.
# Measured in docs/model-cards/all-minilm-l6-v2-encoder.md. The reranker stays fp32 on the CPU: one pair per
# call, int8 scored 0.97x the fp32 pairs/s and moved the order (Spearman 0.95, top-1 agreement 0.88 on SciFact
# pairs; `sesa bench server --compare` with a reranker configured).
AUTO_PRECISION = {("cuda", "encoder"): "fp16", ("cuda", "reranker"): "fp16",
                  ("cpu", "encoder"): "int8", ("cpu", "reranker"): "fp32"}


def choose_device(device: str = "auto", precision: str = "auto", threads: int = 0, cuda_device_id: int = 0,
                  role: str = "encoder") -> DeviceChoice:
    """Pick providers and precision: CUDA (fp16) when asked or auto with a usable GPU, else CPU; ``auto``
    precision per device and ``role`` from AUTO_PRECISION."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    has_cuda_ep = "CUDAExecutionProvider" in available
    gpu = gpu_name(cuda_device_id) if has_cuda_ep else None
    if device == "cuda" and not has_cuda_ep:
        raise BackendError(
            "runtime.device=cuda but onnxruntime has no CUDAExecutionProvider: "
            "pip install onnxruntime-gpu (extra 'gpu') in place of onnxruntime"
        )
    if device == "cuda" or (device == "auto" and has_cuda_ep and gpu):
        prec = AUTO_PRECISION[("cuda", role)] if precision == "auto" else precision
        if prec == "int8":
            raise BackendError("runtime.precision=int8 is a CPU option; use fp16 or fp32 on CUDA")
        desc = f"cuda:{cuda_device_id} ({gpu or 'GPU'})"
        return DeviceChoice("cuda", desc, ["CUDAExecutionProvider", "CPUExecutionProvider"], prec)
    prec = AUTO_PRECISION[("cpu", role)] if precision == "auto" else precision
    if prec == "fp16":
        raise BackendError("runtime.precision=fp16 needs a CUDA device; use fp32 or int8 on CPU")
    n = threads or cpu_cores()
    return DeviceChoice("cpu", f"cpu ({cpu_name()}, {n} threads)", ["CPUExecutionProvider"], prec)


class OrtBackend(ModelBackend):
    """ONNX Runtime session for an encoder (pooled output) or a cross-encoder (logits)."""

    def __init__(self, onnx_path: str, choice: DeviceChoice, threads: int = 0, cuda_device_id: int = 0,
                 allow_spinning: bool = True):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = threads or cpu_cores()
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        if not allow_spinning:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers: list = []
        for p in choice.providers:
            if p == "CUDAExecutionProvider":
                providers.append((p, {"device_id": cuda_device_id}))
            else:
                providers.append(p)
        try:
            self.session = ort.InferenceSession(onnx_path, so, providers=providers)
        except Exception as e:  # ORT raises its own exception types
            raise BackendError(f"cannot load {onnx_path} with {choice.providers}: {e}") from None
        self.providers = self.session.get_providers()
        if choice.kind == "cuda" and "CUDAExecutionProvider" not in self.providers:
            raise BackendError("CUDAExecutionProvider failed to initialise (check CUDA/cuDNN libraries)")
        self.device = choice.description
        self.precision = choice.precision
        # Dynamic int8 quantizes each MatMul's input with one scale per call, computed over the whole batch,
        # padding included: a text's vector would then depend on the texts (and padding) it is batched with.
        # One unpadded sequence per call makes the result a function of the text alone.
        self.per_sequence = choice.precision == "int8"
        self._inputs = [i.name for i in self.session.get_inputs()]
        self._outputs = [o.name for o in self.session.get_outputs()]
        self.dimension = 0
        out0 = self.session.get_outputs()[-1]
        if out0.shape and isinstance(out0.shape[-1], int):
            self.dimension = int(out0.shape[-1])

    def _feeds(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {}
        for name in self._inputs:
            if name in batch:
                feeds[name] = batch[name]
            elif name == "token_type_ids":
                feeds[name] = np.zeros_like(batch["input_ids"])
            else:
                raise BackendError(f"model input {name!r} is not supported (have {sorted(batch)})")
        return feeds

    @staticmethod
    def _sequences(batch: dict[str, np.ndarray]):
        """Each row of a right-padded batch as its own unpadded batch of one."""
        lengths = batch["attention_mask"].sum(axis=1).astype(int)
        for i, n in enumerate(lengths):
            yield {k: v[i:i + 1, : max(1, int(n))] for k, v in batch.items()}

    def encode(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        if self.per_sequence:
            return np.concatenate([self._encode(one) for one in self._sequences(batch)], axis=0)
        return self._encode(batch)

    def score(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        if self.per_sequence:
            return np.concatenate([self._score(one) for one in self._sequences(batch)], axis=0)
        return self._score(batch)

    def _encode(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        feeds = self._feeds(batch)
        if "sentence_embedding" in self._outputs:
            (emb,) = self.session.run(["sentence_embedding"], feeds)
            return np.asarray(emb, dtype=np.float32)
        # A foreign export with token states only: pool here.
        (h,) = self.session.run([self._outputs[0]], feeds)
        h = np.asarray(h, dtype=np.float32)
        if h.ndim == 2:
            pooled = h
        else:
            m = batch["attention_mask"][..., None].astype(np.float32)
            pooled = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norm, 1e-12)).astype(np.float32)

    def _score(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        (logits,) = self.session.run([self._outputs[0]], self._feeds(batch))
        logits = np.asarray(logits, dtype=np.float32)
        if logits.ndim == 1:
            return logits
        if logits.shape[1] == 1:
            return logits[:, 0]
        if logits.shape[1] == 2:  # binary classifier: log-odds of the positive class
            return logits[:, 1] - logits[:, 0]
        raise BackendError(f"cross-encoder has {logits.shape[1]} outputs; expected 1 or 2")
