"""Query encoding with ONNX Runtime: the same weights, several times faster for one question.

A question is a handful of tokens against 88 MB of weights; PyTorch eager spends ~14 ms on
it on a small CPU, ONNX Runtime ~5 ms. The graph is exported once from the embedding
model's own (SHA-verified) weights into the data folder — nothing is downloaded — and checked
against the PyTorch encoder on probe sentences before it is trusted: any disagreement, or
a model that isn't a BERT-style encoder with mean pooling, keeps queries on PyTorch.

``quantized`` goes one step further: the matrix multiplications get int8 weights (per output
channel; activations quantized on the fly), which makes a batch of questions ~2.5x cheaper
again. Nothing else is quantized: ONNX Runtime's default op set, which also quantizes the
token-embedding lookup, gave cosine ~0.96 to PyTorch on chat questions against ~0.995 for
MatMul alone. The vectors are close to, not equal to, PyTorch's, so the agreement bar is
lower; documents are always encoded in full precision.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from engine.index.embedder import Embedder

log = logging.getLogger(__name__)

PROBES = [
    "How do I install it?",
    "A longer question about how the keyword index and dense retrieval are fused per page.",
    "useFormFields() throws TypeError: Cannot read properties of undefined",
]
AGREEMENT = 0.9999  # minimum cosine between ONNX and PyTorch embeddings of the probes
QUANTIZED_AGREEMENT = 0.98  # the same for the int8 graph


class OnnxUnavailable(RuntimeError):
    """This model can't be run through ONNX Runtime here; queries stay on PyTorch."""


def _mean_pooling_model(model: SentenceTransformer) -> bool:
    try:
        from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    except ImportError:  # sentence-transformers before the modules moved (the old path is a deprecated alias since)
        from sentence_transformers.models import (  # type: ignore[import-not-found, no-redef]
            Normalize,
            Pooling,
            Transformer,
        )

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
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            hidden: torch.Tensor = self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state
            return hidden

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.partial")
    axes = {n: {0: "batch", 1: "tokens"} for n in names} | {"hidden": {0: "batch", 1: "tokens"}}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes about traced control flow; checked below instead
        torch.onnx.export(LastHiddenState(bert), tuple(sample[n] for n in names), str(partial), input_names=names,
                          output_names=["hidden"], dynamic_axes=axes, opset_version=17, dynamo=False)
    os.replace(partial, target)


def quantize(source: Path, target: Path) -> None:
    """An int8 copy of ``source`` with only its MatMul weights quantized (atomically)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = target.with_suffix(f".{os.getpid()}.partial")
    logging.disable(logging.WARNING)  # the quantizer notes every tensor it leaves alone, and gives tips, on the root logger
    try:
        quantize_dynamic(str(source), str(partial), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"])
    finally:
        logging.disable(logging.NOTSET)
    os.replace(partial, target)


class OnnxQueryEncoder:
    def __init__(self, embedder: Embedder, cache_dir: Path, threads: int = 1, quantized: bool = False) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise OnnxUnavailable("onnxruntime is not installed") from None
        model = embedder.model
        if not _mean_pooling_model(model):
            raise OnnxUnavailable(f"{embedder.name} is not a mean-pooled transformer")
        self.tokenizer = model.tokenizer
        self.pad_id = self.tokenizer.pad_token_id or 0
        self.dimension = embedder.dimension
        self.max_tokens = embedder.max_tokens
        key = (embedder.weights_sha256 or "unchecked")[:16]
        path = cache_dir / f"{key}.onnx"
        if not path.exists():
            if not embedder.weights_sha256:
                raise OnnxUnavailable("only models with checked weights are exported")
            try:
                export(embedder.location, path)
            except Exception as error:  # the exporter raises many kinds; any of them means "not here"
                raise OnnxUnavailable(f"export failed: {type(error).__name__}: {error}") from None
        if quantized:
            full, path = path, cache_dir / f"{key}.int8.onnx"
            if not path.exists():
                try:
                    quantize(full, path)
                except Exception as error:  # as above: any failure keeps the full-precision graph out of it too
                    raise OnnxUnavailable(f"quantization failed: {type(error).__name__}: {error}") from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        agreement = float(np.min(np.sum(self.encode(PROBES) * embedder.encode(PROBES), axis=1)))
        if agreement < (QUANTIZED_AGREEMENT if quantized else AGREEMENT):
            path.unlink(missing_ok=True)
            verified_marker(path).unlink(missing_ok=True)
            raise OnnxUnavailable(f"the exported model disagrees with PyTorch (cosine {agreement:.5f})")
        mark_verified(path)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Questions are run in groups of similar length, each padded to its own longest.

        One padded batch costs its longest member's length for every member: a chat question
        is often 100–256 tokens, and a batch that mixes one of those with short ones was ~2x
        slower than running them apart. Grouping by length keeps the batching gain for short
        questions and drops the padding cost for long ones.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        ids: list[list[int]] = self.tokenizer(texts, truncation=True, max_length=self.max_tokens)["input_ids"]
        return encode_in_groups(ids, self._run)

    def _run(self, ids: list[list[int]]) -> np.ndarray:
        return run_graph(self.session, self.inputs, self.pad_id, ids)


def encode_in_groups(ids: list[list[int]], run: Callable[[list[list[int]]], np.ndarray]) -> np.ndarray:
    """One vector per token sequence, in order, each group of similar length (:func:`length_groups`) one ``run``."""
    vectors: dict[int, np.ndarray] = {}
    for group in length_groups([len(i) for i in ids], PADDED_TOKENS_PER_RUN):
        for index, vector in zip(group, run([ids[i] for i in group]), strict=True):
            vectors[index] = vector
    return np.stack([vectors[index] for index in range(len(ids))])


def run_graph(session: Any, inputs: list[str], pad_id: int, ids: list[list[int]]) -> np.ndarray:
    """Mean-pooled, L2-normalised vectors of ``ids`` (padded to the longest) from the exported graph's
    ``session`` (an ``onnxruntime.InferenceSession``, which has no type information)."""
    width = max(len(i) for i in ids)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for row, sequence in enumerate(ids):
        input_ids[row, : len(sequence)] = sequence
        mask[row, : len(sequence)] = 1
    feeds = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
    hidden: np.ndarray = session.run(None, {name: feeds[name] for name in inputs})[0]
    weights = mask[..., None].astype(np.float32)
    pooled: np.ndarray = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    normalised: np.ndarray = (pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).astype(np.float32)
    return normalised


#: Padded tokens (rows x longest) per ONNX run: a batch of short questions shares one run,
#: a long question runs alone. Measured on Discord questions (median ~100 tokens).
PADDED_TOKENS_PER_RUN = 256


def length_groups(lengths: list[int], budget: int) -> list[list[int]]:
    """Indices grouped in order of length so that each group's rows x longest stays within ``budget``
    (a single row may exceed it)."""
    groups: list[list[int]] = []
    group: list[int] = []
    for index in sorted(range(len(lengths)), key=lengths.__getitem__):
        if group and lengths[index] * (len(group) + 1) > budget:
            groups.append(group)
            group = []
        group.append(index)
    if group:
        groups.append(group)
    return groups


# -- a cold start without torch -------------------------------------------------------------------------------


def verified_marker(graph: Path) -> Path:
    return graph.with_name(graph.name + ".verified")


def _stamp(graph: Path) -> dict[str, int]:
    info = graph.stat()
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns}


def mark_verified(graph: Path) -> None:
    """Record that ``graph`` agreed with PyTorch on the probes (``<graph>.verified``, tied to the file's size and
    time, so a replaced graph is not trusted)."""
    import json

    verified_marker(graph).write_text(json.dumps(_stamp(graph)), encoding="utf-8")


def verified_graph(cache_dir: Path, weights_sha256: str | None, quantized: bool | None = None) -> Path | None:
    """The verified graph of these weights in ``cache_dir``, or None: the int8 one (``quantized`` True), the full
    precision one (False), or either, full precision first (None)."""
    import json

    if not weights_sha256:
        return None
    key = weights_sha256[:16]
    graphs = {False: cache_dir / f"{key}.onnx", True: cache_dir / f"{key}.int8.onnx"}
    for graph in ([graphs[quantized]] if quantized is not None else [graphs[False], graphs[True]]):
        try:
            if json.loads(verified_marker(graph).read_text(encoding="utf-8")) == _stamp(graph):
                return graph
        except (OSError, ValueError):
            continue
    return None


class ColdQueryEncoder:
    """Questions encoded by a verified ONNX graph with the model's own fast tokenizer: no torch, no
    sentence-transformers, so a one-question process (``firstreply ask``) starts in about a second."""

    def __init__(self, model_dir: Path, graph: Path, threads: int = 1) -> None:
        import json

        import onnxruntime
        from tokenizers import Tokenizer

        config = json.loads((model_dir / "sentence_bert_config.json").read_text(encoding="utf-8"))
        self.max_tokens = int(config.get("max_seq_length") or 256)
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.max_tokens)
        self.pad_id = self.tokenizer.token_to_id("[PAD]") or 0
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.dimension = int(self.session.get_outputs()[0].shape[-1]) if isinstance(
            self.session.get_outputs()[0].shape[-1], int) else 0

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        ids = [e.ids for e in self.tokenizer.encode_batch(texts)]
        return encode_in_groups(ids, lambda group: run_graph(self.session, self.inputs, self.pad_id, group))
