"""Ingest throughput against the bare model, and the cost of re-ingesting an unchanged corpus.

    python -m bench.ingest_throughput [CORPUS]

CORPUS defaults to ../shared/eval/payload/corpus (or this repository's docs/). Prints:
- chunks/s of ``model.encode`` on the very chunk texts the pipeline makes (in its batches,
  model warmed up first), then chunks/s of the whole pipeline (discover, parse, chunk, embed,
  store, keyword index) on a fresh knowledge base, in the same run; their ratio is the
  pipeline's efficiency (target >= 0.85);
- the time of a second ingest of the unchanged corpus as a share of the first (target <= 5%).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from engine.config import Settings
from engine.service import Engine

ROOT = Path(__file__).resolve().parents[1]


def default_corpus() -> Path:
    shared = ROOT.parent / "shared" / "eval" / "payload" / "corpus"
    return shared if shared.is_dir() else ROOT / "docs"


def chunk_texts(engine: Engine, corpus: Path) -> list[str]:
    """The texts the pipeline will embed, made the way it makes them (no embedding, no store)."""
    from engine.ingest.chunking import chunk_document
    from engine.ingest.sources import discover, parser_for, read_text

    info = discover(corpus)
    texts = []
    for rel_path in info.files:
        parser = parser_for(rel_path)
        text = read_text(info.root, rel_path) if parser else None
        if parser and text is not None:
            doc = parser(rel_path, text)
            texts.extend(c.embedding_text for c in chunk_document(doc, engine.embedder.count_tokens, engine.embedder.max_tokens))
    return texts


def main() -> None:
    corpus = Path(sys.argv[1]) if len(sys.argv) > 1 else default_corpus()
    with tempfile.TemporaryDirectory() as state:
        engine = Engine(Settings(data_dir=Path(state), kb="bench", _env_file=None))
        texts = chunk_texts(engine, corpus)
        engine.embedder.encode(texts[:256])  # warm up the model on texts like these

        started = time.perf_counter()
        for start in range(0, len(texts), 256):  # the pipeline's batches
            engine.embedder.encode(texts[start : start + 256])
        encode_seconds = time.perf_counter() - started

        started = time.perf_counter()
        report = engine.ingest(corpus)
        pipeline_seconds = time.perf_counter() - started

        started = time.perf_counter()
        again = engine.ingest(corpus)
        reingest_seconds = time.perf_counter() - started

    chunks = report.chunks_total
    assert chunks == len(texts), (chunks, len(texts))
    pipeline_rate, encode_rate = chunks / pipeline_seconds, chunks / encode_seconds
    print(f"corpus            {corpus} ({report.files_seen} files, {chunks} chunks)")
    print(f"model.encode      {encode_seconds:7.2f} s  {encode_rate:8.1f} chunks/s")
    print(f"pipeline          {pipeline_seconds:7.2f} s  {pipeline_rate:8.1f} chunks/s  (embedding and storing inside it: {report.embed_seconds:.2f} s)")
    print(f"efficiency        {pipeline_rate / encode_rate:7.3f}  (pipeline / bare model; target >= 0.85)")
    print(f"re-ingest         {reingest_seconds:7.2f} s  = {100 * reingest_seconds / pipeline_seconds:.1f}% of the first ingest "
          f"(target <= 5%); embedded {again.chunks_embedded}")


if __name__ == "__main__":
    main()
