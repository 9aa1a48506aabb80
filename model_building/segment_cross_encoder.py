"""The segment-cosine cross-encoder: a cross-encoder that starts out as a good ranker.

Why: a cross-encoder made from a bi-encoder checkpoint (all-MiniLM-L6-v2) with a new
classification head scores at chance until it has seen many thousands of pairs, which a 2-core
CPU cannot afford; and what it then learns from one small dataset does not carry to others.
This model reads the same ``[CLS] query [SEP] passage [SEP]`` input with full cross-attention,
but its score starts from what the bi-encoder already knows:

    logit = scale * cos(mean(query tokens), mean(passage tokens)) + w . h[CLS] + b

The token states are those of the jointly encoded pair (so every layer can attend across the
two texts), the means run over each segment's own tokens (``token_type_ids`` 0 / 1, special
tokens left out), ``scale`` is learned, and the linear ``[CLS]`` term starts at zero. Before
any training it already ranks like a weak dense retriever; training then adds interactions.

On disk it is an ordinary Hugging Face ``AutoModel`` dir (``config.json``, ``model.safetensors``,
tokenizer files) plus ``sesa_cross_encoder.json`` (architecture, scale, special-token ids) and
``sesa_head.safetensors`` (the ``[CLS]`` term). :mod:`model_building.export` recognises the
marker file and exports this module to the same ONNX contract as any reranker: inputs
``input_ids``, ``attention_mask``, ``token_type_ids``; output ``logits`` [batch, 1].
torch is imported lazily: serving needs only the exported ONNX graph.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ARCH_FILE = "sesa_cross_encoder.json"
HEAD_FILE = "sesa_head.safetensors"
ARCHITECTURE = "segment-cosine"


def is_segment_cross_encoder(model_dir: str | Path) -> bool:
    return (Path(model_dir) / ARCH_FILE).is_file()


def _module_class() -> Any:
    import torch

    class SegmentCosineCrossEncoder(torch.nn.Module):
        """Joint encoding; score = scale * cos(query-segment mean, passage-segment mean) + linear([CLS])."""

        def __init__(self, bert: Any, cls_token_id: int, sep_token_id: int, scale: float = 20.0):
            super().__init__()
            self.bert = bert
            self.cls_token_id = int(cls_token_id)
            self.sep_token_id = int(sep_token_id)
            self.scale = torch.nn.Parameter(torch.tensor(float(scale)))
            self.head = torch.nn.Linear(bert.config.hidden_size, 1)
            torch.nn.init.zeros_(self.head.weight)
            torch.nn.init.zeros_(self.head.bias)

        @property
        def config(self) -> Any:
            return self.bert.config

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state
            plain = (attention_mask.to(h.dtype) * (input_ids != self.cls_token_id).to(h.dtype)
                     * (input_ids != self.sep_token_id).to(h.dtype))
            second = token_type_ids.to(h.dtype)
            qm = (plain * (1 - second)).unsqueeze(-1)
            dm = (plain * second).unsqueeze(-1)
            q = (h * qm).sum(1) / qm.sum(1).clamp(min=1.0)
            d = (h * dm).sum(1) / dm.sum(1).clamp(min=1.0)
            cos = torch.nn.functional.cosine_similarity(q, d, dim=-1, eps=1e-6)
            return (self.scale * cos + self.head(h[:, 0]).squeeze(-1)).unsqueeze(-1)

    return SegmentCosineCrossEncoder


def _special_ids(model_dir: Path) -> tuple[int, int]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    if cls_id is None or sep_id is None:
        raise ValueError(f"{model_dir}/tokenizer.json has no [CLS]/[SEP] tokens: the segment-cosine "
                         "cross-encoder needs a BERT-style pair template")
    return int(cls_id), int(sep_id)


def from_encoder(encoder_dir: str | Path, scale: float = 20.0, attn_implementation: str | None = None) -> Any:
    """A new segment-cosine cross-encoder over a bi-encoder checkpoint (e.g. all-MiniLM-L6-v2)."""
    from transformers import AutoModel

    d = Path(encoder_dir)
    kw = {"attn_implementation": attn_implementation} if attn_implementation else {}
    bert = AutoModel.from_pretrained(str(d), **kw)
    cls_id, sep_id = _special_ids(d)
    return _module_class()(bert, cls_id, sep_id, scale)


def load(model_dir: str | Path, attn_implementation: str | None = None) -> Any:
    """A saved segment-cosine cross-encoder (see :func:`save`)."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModel

    d = Path(model_dir)
    meta = json.loads((d / ARCH_FILE).read_text(encoding="utf-8"))
    if meta.get("architecture") != ARCHITECTURE:
        raise ValueError(f"{d / ARCH_FILE}: unknown architecture {meta.get('architecture')!r}")
    kw = {"attn_implementation": attn_implementation} if attn_implementation else {}
    bert = AutoModel.from_pretrained(str(d), **kw)
    m = _module_class()(bert, meta["cls_token_id"], meta["sep_token_id"], 1.0)
    head = load_file(str(d / HEAD_FILE))
    with torch.no_grad():
        m.scale.copy_(head["scale"])
        m.head.weight.copy_(head["head.weight"])
        m.head.bias.copy_(head["head.bias"])
    return m.eval()


def save(module: Any, out_dir: str | Path) -> Path:
    """Write the HF encoder dir + marker + head; tokenizer files are the caller's to copy."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    module.bert.config.num_labels = 1
    module.bert.save_pretrained(str(out))
    save_file({"scale": module.scale.detach().reshape(()).contiguous().clone(),
               "head.weight": module.head.weight.detach().contiguous().clone(),
               "head.bias": module.head.bias.detach().contiguous().clone()}, str(out / HEAD_FILE))
    (out / ARCH_FILE).write_text(json.dumps({
        "architecture": ARCHITECTURE,
        "cls_token_id": module.cls_token_id,
        "sep_token_id": module.sep_token_id,
        "scale": float(module.scale.detach()),
        "score": "scale * cos(mean query-segment states, mean passage-segment states) + linear(h[CLS])",
    }, indent=2) + "\n", encoding="utf-8")
    return out
