"""Model backends behind one small interface: token batch in, pooled vectors or logits out.

Why an interface: the batcher and the service never see the engine, so a backend only has to implement
``encode`` and ``score``. Two engines serve here:

* **ONNX Runtime**: CUDAExecutionProvider (fp16) when a GPU and onnxruntime-gpu are present, otherwise the
  CPU provider (fp32, or dynamic int8 on VNNI/AVX2) with ``intra_op_num_threads`` = cores (spinning on: on a
  2-core box turning it off costs 5-30% at small batches);
* **OpenVINO** on the CPU: fp32, or bf16 where the CPU has bf16 units (AMX tiles, AVX-512 BF16), which
  ONNX Runtime's CPU provider does not use.

``choose_device`` picks the engine and precision per device, role and the CPU's instruction sets
(``cpu_features``), and says why.
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

from inference_server.runtime import cpu_features
from inference_server.runtime.cpu_features import CpuFeatures

log = logging.getLogger(__name__)


class BackendError(RuntimeError):
    """The backend cannot be created for this device/model; message says why."""


class ModelBackend(ABC):
    """One loaded model. ``batch`` holds int64 arrays input_ids / attention_mask / token_type_ids."""

    device: str = "cpu"
    providers: list[str] = []
    precision: str = "fp32"
    engine: str = "onnxruntime"
    reason: str = ""

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
    engine: str = "onnxruntime"  # "onnxruntime" | "openvino"
    reason: str = ""  # why this engine and precision (Info, logs, `sesa status`)


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


ENGINES = ("onnxruntime", "openvino")


def openvino_available() -> bool:
    """OpenVINO is installed (a default dependency; a slim install may leave it out): checked without importing."""
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def choose_cpu_path(role: str, features: CpuFeatures, has_openvino: bool, engine: str = "auto") -> tuple[str, str, str]:
    """(engine, precision, reason) of ``precision: auto`` on the CPU, from the instruction sets found.

    Measured (`sesa bench server --compare`, docs/model-cards/all-minilm-l6-v2-encoder.md):
    * AMX tiles: OpenVINO bf16 runs the matrix units, which ONNX Runtime's CPU provider leaves idle; bf16
      keeps the vectors at cosine >= 0.9999 to fp32 and a text's vector does not depend on its batch.
    * AVX-512 BF16 without AMX (AMD Zen 4): ONNX Runtime dynamic int8 (VNNI) encodes fastest (57.3 passages/s
      end to end against 55.1 for OpenVINO bf16 and 26.9 for fp32 on 2 cores); a reranker export in fp32, which
      int8 would reorder (Spearman 0.95), runs bf16 on OpenVINO at fp32's order (Spearman 0.997) and 1.55x speed.
    * VNNI or AVX2 only: ONNX Runtime dynamic int8 for the encoder, fp32 for the reranker.
    * neither: fp32 (int8 has no fast kernels there).
    An encoder in int8 runs one unpadded sequence per call (its vector depends on the text alone).
    """
    found = features.describe()
    use_ov = has_openvino and engine in ("auto", "openvino")  # engine=openvino implies has_openvino (choose_device)
    if use_ov and features.bf16_units and (features.amx_bf16 or role == "reranker" or engine == "openvino"):
        unit = "AMX tiles" if features.amx_bf16 else "AVX-512 BF16"
        return "openvino", "bf16", f"{unit} found ({found}): OpenVINO bf16 uses them at fp32's accuracy"
    if engine == "openvino":
        return "openvino", "fp32", f"no bf16 units ({found}): OpenVINO fp32"
    why_not_ov = "" if has_openvino or not features.bf16_units else "; OpenVINO is not installed, so its bf16 path is off"
    if role == "encoder" and (features.vnni or features.avx2):
        unit = "VNNI" if features.vnni else "AVX2"
        return "onnxruntime", "int8", f"{unit} found ({found}): ONNX Runtime dynamic int8, one sequence per call{why_not_ov}"
    if role == "encoder":
        return "onnxruntime", "fp32", f"no VNNI or AVX2 ({found}): int8 has no fast kernels here, fp32"
    return "onnxruntime", "fp32", f"reranker: fp32 keeps its order (int8 moves it){why_not_ov}"


def choose_device(device: str = "auto", precision: str = "auto", threads: int = 0, cuda_device_id: int = 0,
                  role: str = "encoder", engine: str = "auto", features: CpuFeatures | None = None,
                  has_openvino: bool | None = None) -> DeviceChoice:
    """Pick engine, providers and precision: CUDA (fp16) when asked or auto with a usable GPU, else the CPU
    path ``choose_cpu_path`` finds for ``role`` on this CPU's instruction sets. An explicit precision or engine
    wins; an impossible combination is a BackendError that says what to change."""
    import onnxruntime as ort

    if engine not in ("auto", *ENGINES):
        raise BackendError(f"runtime.engine={engine!r}: use auto, onnxruntime or openvino")
    available = ort.get_available_providers()
    has_cuda_ep = "CUDAExecutionProvider" in available
    gpu = gpu_name(cuda_device_id) if has_cuda_ep and engine != "openvino" else None
    if device == "cuda" and not has_cuda_ep:
        raise BackendError(
            "runtime.device=cuda but onnxruntime has no CUDAExecutionProvider: "
            "pip install onnxruntime-gpu (extra 'gpu') in place of onnxruntime"
        )
    if device == "cuda" or (device == "auto" and has_cuda_ep and gpu):
        if engine == "openvino":
            raise BackendError("runtime.engine=openvino runs on the CPU; use engine auto or onnxruntime on CUDA")
        prec = "fp16" if precision == "auto" else precision
        if prec in ("int8", "bf16"):
            raise BackendError(f"runtime.precision={prec} is a CPU option; use fp16 or fp32 on CUDA")
        desc = f"cuda:{cuda_device_id} ({gpu or 'GPU'})"
        return DeviceChoice("cuda", desc, ["CUDAExecutionProvider", "CPUExecutionProvider"], prec, "onnxruntime",
                            "CUDA device: fp16" if precision == "auto" else f"runtime.precision={prec}")
    features = features or cpu_features.detect()
    has_openvino = openvino_available() if has_openvino is None else has_openvino
    if engine == "openvino" and not has_openvino:
        raise BackendError("runtime.engine=openvino but OpenVINO is not installed: pip install openvino")
    n = threads or cpu_cores()
    desc = f"cpu ({cpu_name()}, {n} threads)"
    if precision == "auto":
        eng, prec, reason = choose_cpu_path(role, features, has_openvino, engine)
    else:
        eng, prec, reason = _explicit_cpu_path(precision, engine, features, has_openvino)
    providers = ["OpenVINO (CPU)"] if eng == "openvino" else ["CPUExecutionProvider"]
    return DeviceChoice("cpu", desc, providers, prec, eng, reason)


def _explicit_cpu_path(precision: str, engine: str, features: CpuFeatures, has_openvino: bool) -> tuple[str, str, str]:
    if precision == "fp16":
        raise BackendError("runtime.precision=fp16 needs a CUDA device; use bf16, int8 or fp32 on CPU")
    if precision == "bf16":
        if engine == "onnxruntime":
            raise BackendError("runtime.precision=bf16 runs on OpenVINO (ONNX Runtime's CPU provider has no bf16 "
                               "kernels): set runtime.engine to auto or openvino")
        if not has_openvino:
            raise BackendError("runtime.precision=bf16 needs OpenVINO: pip install openvino")
        if not features.bf16_units:
            raise BackendError(f"runtime.precision=bf16 needs bf16 units (amx_bf16 or avx512_bf16); this CPU has "
                               f"{features.describe()}, where bf16 would run as slow fp32: use int8 or fp32")
        return "openvino", "bf16", "runtime.precision=bf16"
    if precision == "int8" and engine == "openvino":
        raise BackendError("runtime.precision=int8 runs on ONNX Runtime (dynamic int8); OpenVINO serves fp32 and bf16")
    return ("openvino" if engine == "openvino" else "onnxruntime"), precision, f"runtime.precision={precision}"


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
        return model_feeds(self._inputs, batch)

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
        return pooled_embeddings(h, batch["attention_mask"])

    def _score(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        (logits,) = self.session.run([self._outputs[0]], self._feeds(batch))
        return relevance_scores(logits)


def model_feeds(inputs: list[str], batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The batch arrays a model's inputs name; a missing token_type_ids is zeros (BERT's single segment)."""
    feeds = {}
    for name in inputs:
        if name in batch:
            feeds[name] = batch[name]
        elif name == "token_type_ids":
            feeds[name] = np.zeros_like(batch["input_ids"])
        else:
            raise BackendError(f"model input {name!r} is not supported (have {sorted(batch)})")
    return feeds


def pooled_embeddings(h, attention_mask: np.ndarray) -> np.ndarray:
    """Token states [B, T, D] (or already pooled [B, D]) -> mean-pooled, L2-normalised float32 vectors."""
    h = np.asarray(h, dtype=np.float32)
    if h.ndim == 2:
        pooled = h
    else:
        m = attention_mask[..., None].astype(np.float32)
        pooled = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    norm = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.maximum(norm, 1e-12)).astype(np.float32)


def relevance_scores(logits) -> np.ndarray:
    """A cross-encoder's logits -> one relevance score per row: the single logit, or for a binary classifier
    the log-odds of the positive class."""
    logits = np.asarray(logits, dtype=np.float32)
    if logits.ndim == 1:
        return logits
    if logits.shape[1] == 1:
        return logits[:, 0]
    if logits.shape[1] == 2:
        return logits[:, 1] - logits[:, 0]
    raise BackendError(f"cross-encoder has {logits.shape[1]} outputs; expected 1 or 2")


# OpenVINO keeps compiled kernels per input shape (5,000 shapes by default): a server sees up to
# max_batch_size x max tokens distinct shapes, and each costs ~0.8 MB, so the default grows a server by
# gigabytes. A small cache keeps the recent shapes (length-bucketed passes repeat them).
OV_SHAPE_CACHE = 64


class OpenVinoBackend(ModelBackend):
    """OpenVINO on the CPU for the same ONNX file (read directly, no conversion step), fp32 or bf16.

    bf16 is OpenVINO's inference precision hint: weights and activations of the matrix products run in bf16
    on AMX tiles or AVX-512 BF16, accumulation stays fp32, and each row is computed on its own, so a text's
    vector does not depend on its batch and batches are padded as for fp32. Compiled models are cached under
    ``cache_dir`` (start-up after the first is fast). One infer request per calling thread.
    """

    def __init__(self, onnx_path: str, choice: DeviceChoice, threads: int = 0, cache_dir: str | None = None):
        import threading

        try:
            import openvino as ov
        except ImportError as e:
            raise BackendError(f"OpenVINO is not installed ({e}): pip install openvino") from None
        core = ov.Core()
        if cache_dir:
            try:
                os.makedirs(cache_dir, exist_ok=True)
                core.set_property({"CACHE_DIR": cache_dir})
            except (OSError, RuntimeError) as e:
                log.warning("OpenVINO compile cache off (%s: %s)", cache_dir, e)
        hint = {"bf16": "bf16", "fp32": "f32"}.get(choice.precision)
        if hint is None:
            raise BackendError(f"OpenVINO serves fp32 and bf16, not {choice.precision}")
        config = {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": threads or cpu_cores(),
                  "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
                  "CPU_RUNTIME_CACHE_CAPACITY": int(os.environ.get("SESA_OV_SHAPE_CACHE", OV_SHAPE_CACHE))}
        try:
            self.compiled = core.compile_model(core.read_model(onnx_path), "CPU", config)
        except Exception as e:  # OpenVINO raises RuntimeError subclasses of its own
            raise BackendError(f"OpenVINO cannot load {onnx_path} ({choice.precision}): {e}") from None
        self.device = choice.description
        self.providers = list(choice.providers)
        self.precision = choice.precision
        self.per_sequence = False
        self._inputs = [i.get_any_name() for i in self.compiled.inputs]
        names = [o.get_any_name() for o in self.compiled.outputs]
        self._pooled = self.compiled.outputs[names.index("sentence_embedding")] if "sentence_embedding" in names else None
        self._first = self.compiled.outputs[0]
        last = self.compiled.outputs[-1].get_partial_shape()
        self.dimension = int(last[-1].get_length()) if last.rank.is_static and last[-1].is_static else 0
        self._local = threading.local()

    def _request(self):
        req = getattr(self._local, "request", None)
        if req is None:
            req = self._local.request = self.compiled.create_infer_request()
        return req

    def _feeds(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return model_feeds(self._inputs, batch)

    def encode(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        out = self._request().infer(self._feeds(batch))
        if self._pooled is not None:
            return np.array(out[self._pooled], dtype=np.float32)
        return pooled_embeddings(out[self._first], batch["attention_mask"])

    def score(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        return relevance_scores(np.array(self._request().infer(self._feeds(batch))[self._first]))


def make_backend(onnx_path: str, choice: DeviceChoice, threads: int = 0, cuda_device_id: int = 0,
                 allow_spinning: bool = True, cache_dir: str | None = None) -> ModelBackend:
    """The backend of ``choice.engine`` for one ONNX file, carrying the choice's engine and reason (Info)."""
    if choice.engine == "openvino":
        backend: ModelBackend = OpenVinoBackend(onnx_path, choice, threads=threads, cache_dir=cache_dir)
    else:
        backend = OrtBackend(onnx_path, choice, threads=threads, cuda_device_id=cuda_device_id,
                             allow_spinning=allow_spinning)
    backend.engine, backend.reason = choice.engine, choice.reason
    return backend
