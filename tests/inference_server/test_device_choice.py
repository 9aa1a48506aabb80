"""`runtime.precision: auto` resolves per device and role (the measured defaults in AUTO_PRECISION)."""

from __future__ import annotations

import pytest

from inference_server.runtime.backend import AUTO_PRECISION, BackendError, choose_device


def test_auto_on_the_cpu_is_int8_for_the_encoder_and_fp32_for_the_reranker():
    # the encoder: faster at the same nDCG, run one sequence per call so vectors do not depend on their batch
    assert choose_device("cpu", "auto").precision == "int8"
    assert choose_device("cpu", "auto", role="reranker").precision == "fp32"
    assert AUTO_PRECISION[("cuda", "encoder")] == AUTO_PRECISION[("cuda", "reranker")] == "fp16"


def test_an_explicit_precision_wins_and_impossible_ones_are_clear_errors():
    assert choose_device("cpu", "fp32").precision == "fp32"
    assert choose_device("cpu", "int8", role="reranker").precision == "int8"
    with pytest.raises(BackendError, match="fp16 needs a CUDA device"):
        choose_device("cpu", "fp16")
