"""Ingest throughput against the bare model, and the cost of re-ingesting an unchanged corpus.

    python -m bench.ingest_throughput [CORPUS]

CORPUS defaults to ../shared/eval/payload/corpus (or this repository's docs/). Prints:
- chunks/s of the whole pipeline (discover, parse, chunk, embed, store, keyword index) on a
  fresh knowledge base, and chunks/s of ``model.encode`` on the very same chunk texts in the
  same run; their ratio is the pipeline's efficiency (target >= 0.85);
- the time of a second ingest of the unchanged corpus as a share of the first (target <= 5%).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from engine.config import Settings
from engine.index.keywords import KeywordIndex
from engine.service import Engine

ROOT = Path(__file__).resolve().parents[1]


def default_corpus() -> Path:
    shared = ROOT.parent / "shared" / "eval" / "payload" / "corpus"
    return shared if shared.is_dir() else ROOT / "docs"


def main() -> None:
    corpus = Path(sys.argv[1]) if len(sys.argv) > 1 else default_corpus()
    with tempfile.TemporaryDirectory() as state:
        engine = Engine(Settings(data_dir=Path(state), kb="bench", _env_file=None))
        engine.embedder.encode(["warm up the model and its threads"] * 64)

        started = time.perf_counter()
        report = engine.ingest(corpus)
        pipeline_seconds = time.perf_counter() - started

        texts = [c.embedding_text for c in KeywordIndex.load(engine.kb_dir() / "keywords").chunks]
        started = time.perf_counter()
        for start in range(0, len(texts), 256):  # same batches as the pipeline
            engine.embedder.encode(texts[start : start + 256])
        encode_seconds = time.perf_counter() - started

        started = time.perf_counter()
        again = engine.ingest(corpus)
        reingest_seconds = time.perf_counter() - started

    chunks = report.chunks_total
    pipeline_rate, encode_rate = chunks / pipeline_seconds, chunks / encode_seconds
    print(f"corpus            {corpus} ({report.files_seen} files, {chunks} chunks)")
    print(f"pipeline          {pipeline_seconds:7.2f} s  {pipeline_rate:8.1f} chunks/s  (embedding inside it: {report.embed_seconds:.2f} s)")
    print(f"model.encode      {encode_seconds:7.2f} s  {encode_rate:8.1f} chunks/s")
    print(f"efficiency        {pipeline_rate / encode_rate:7.3f}  (pipeline / bare model; target >= 0.85)")
    print(f"re-ingest         {reingest_seconds:7.2f} s  = {100 * reingest_seconds / pipeline_seconds:.1f}% of the first ingest "
          f"(target <= 5%); embedded {again.chunks_embedded}")


if __name__ == "__main__":
    main()
