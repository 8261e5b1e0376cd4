"""Query encoding with ONNX Runtime: the same weights, several times faster for one question.

A question is a handful of tokens against 88 MB of weights; PyTorch eager spends ~14 ms on
it on a small CPU, ONNX Runtime ~5 ms. The graph is exported once from the embedding
model's own (SHA-verified) weights into the data folder — nothing is downloaded — and checked
against the PyTorch encoder on probe sentences before it is trusted: any disagreement, or
a model that isn't a BERT-style encoder with mean pooling, keeps queries on PyTorch.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

PROBES = [
    "How do I install it?",
    "A longer question about how the keyword index and dense retrieval are fused per page.",
    "useFormFields() throws TypeError: Cannot read properties of undefined",
]
AGREEMENT = 0.9999  # minimum cosine between ONNX and PyTorch embeddings of the probes


class OnnxUnavailable(RuntimeError):
    """This model can't be run through ONNX Runtime here; queries stay on PyTorch."""


def _mean_pooling_model(model) -> bool:
    from sentence_transformers.models import Normalize, Pooling, Transformer

    modules = list(model)
    return (isinstance(modules[0], Transformer) and len(modules) >= 2 and isinstance(modules[1], Pooling)
            and modules[1].pooling_mode == "mean" and all(isinstance(m, Normalize) for m in modules[2:]))


def export(model_dir: str, target: Path) -> None:
    """Export the transformer of ``model_dir`` to ONNX at ``target`` (atomically)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    # Eager attention exports a graph that is exact for any padding; the SDPA path does not.
    bert = AutoModel.from_pretrained(model_dir, attn_implementation="eager", local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    sample = tokenizer(["an example question"], return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *inputs):
            return self.inner(**dict(zip(names, inputs))).last_hidden_state

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.partial")
    axes = {n: {0: "batch", 1: "tokens"} for n in names} | {"hidden": {0: "batch", 1: "tokens"}}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes about traced control flow; checked below instead
        torch.onnx.export(LastHiddenState(bert), tuple(sample[n] for n in names), str(partial), input_names=names,
                          output_names=["hidden"], dynamic_axes=axes, opset_version=17, dynamo=False)
    os.replace(partial, target)


class OnnxQueryEncoder:
    def __init__(self, embedder, cache_dir: Path, threads: int = 1) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise OnnxUnavailable("onnxruntime is not installed") from None
        model = embedder.model
        if not _mean_pooling_model(model):
            raise OnnxUnavailable(f"{embedder.name} is not a mean-pooled transformer")
        self.tokenizer = model.tokenizer
        self.max_tokens = int(model.max_seq_length)
        key = (embedder.weights_sha256 or "unchecked")[:16]
        path = cache_dir / f"{key}.onnx"
        if not path.exists():
            if not embedder.weights_sha256:
                raise OnnxUnavailable("only models with checked weights are exported")
            try:
                export(embedder.location, path)
            except Exception as error:  # the exporter raises many kinds; any of them means "not here"
                raise OnnxUnavailable(f"export failed: {type(error).__name__}: {error}") from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        agreement = float(np.min(np.sum(self.encode(PROBES) * embedder.encode(PROBES), axis=1)))
        if agreement < AGREEMENT:
            path.unlink(missing_ok=True)
            raise OnnxUnavailable(f"the exported model disagrees with PyTorch (cosine {agreement:.5f})")

    def encode(self, texts: list[str]) -> np.ndarray:
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="np")
        hidden = self.session.run(None, {name: batch[name].astype(np.int64) for name in self.inputs})[0]
        mask = batch["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        return (pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).astype(np.float32)
