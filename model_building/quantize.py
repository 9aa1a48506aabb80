"""Derived precisions of an fp32 ONNX export: dynamic per-channel int8 and fp16 (I/O kept fp32)."""

from __future__ import annotations

import logging
from pathlib import Path


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


def convert_fp16(src: str | Path, dst: str | Path) -> None:
    """fp16 weights and activations for a GPU; inputs and outputs stay fp32 so callers need not change."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    onnx.save(convert_float_to_float16(onnx.load(str(src)), keep_io_types=True), str(dst))
