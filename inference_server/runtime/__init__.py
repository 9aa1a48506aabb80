"""Model runtimes: backends (ONNX Runtime today), the encoder (dense + concepts) and the reranker."""

from inference_server.runtime.backend import (
    BackendError,
    DeviceChoice,
    ModelBackend,
    OrtBackend,
    choose_device,
)
from inference_server.runtime.encoder import EncodeItem, EncodeResult, EncoderRuntime
from inference_server.runtime.reranker import RerankerRuntime

__all__ = [
    "BackendError",
    "DeviceChoice",
    "ModelBackend",
    "OrtBackend",
    "choose_device",
    "EncodeItem",
    "EncodeResult",
    "EncoderRuntime",
    "RerankerRuntime",
]
