"""Ingest throughput against the bare model, and the cost of re-ingesting an unchanged corpus.

    python -m bench.ingest_throughput [CORPUS]

CORPUS defaults to ../shared/eval/payload/corpus (or this repository's docs/). Prints:
- chunks/s of ``model.encode`` on the very chunk texts the pipeline makes (in its batches,
  model warmed up first), then chunks/s of the whole pipeline (discover, parse, chunk, embed,
  store, keyword index) on a fresh knowledge base, in the same run; their ratio is the
  pipeline's efficiency (target >= 0.85);
- the time of a second ingest of the unchanged corpus as a share of the first (target <= 5%).

    python -m bench.ingest_throughput --repo PATH [--parse-only]

PATH is a source repository (e.g. a TypeScript project of a few thousand files, outside this one). Prints,
besides the above, how many files became code units, config documents or were skipped (and why), the
parse-and-chunk rate (files/s, units/s: tree-sitter and the chunker, no model), and units/s of the bare
model encoding the very unit chunks against units/s of the whole pipeline. ``--parse-only`` stops after the
parse-and-chunk figures (the model's tokenizer sizes chunks; nothing is encoded), for repositories too large to embed on the machine at hand.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

from engine.config import Settings
from engine.service import Engine

ROOT = Path(__file__).resolve().parents[1]


def default_corpus() -> Path:
    shared = ROOT.parent / "shared" / "eval" / "payload" / "corpus"
    return shared if shared.is_dir() else ROOT / "docs"


def chunk_texts(engine: Engine, corpus: Path) -> list[str]:
    """The texts the pipeline will embed, made the way it makes them (no embedding, no store)."""
    return read_corpus(corpus, engine.embedder.count_tokens, engine.embedder.max_tokens)[0]


def read_corpus(corpus: Path, count_tokens, max_tokens: int) -> tuple[list[str], Counter, Counter, float]:
    """The chunk texts of a corpus as the pipeline's reader makes them; units per kind of file (a code unit
    is one function, method, class or type; a config file is one document; "parse seconds" the time inside
    the parsers); what the reader skipped; seconds in all (reading, parsing and chunking)."""
    from engine.ingest.chunking import chunk_document
    from engine.ingest.code_units import grammar_for
    from engine.ingest.document import NotRead
    from engine.ingest.reader import SourceReader

    started = time.perf_counter()
    reader = SourceReader(corpus, count_tokens, max_tokens)
    texts: list[str] = []
    units: Counter = Counter()
    for file in reader.files():
        parse_started = time.perf_counter()
        try:
            doc = file.parser(file.path, file.text)
        except NotRead as declined:
            reader.skipped[str(declined)] = reader.skipped.get(str(declined), 0) + 1
            continue
        except Exception:  # counted as the pipeline lists it: unreadable
            units["unreadable"] += 1
            continue
        units["parse seconds"] += time.perf_counter() - parse_started
        if doc.partial:
            reader.skipped[doc.partial] = reader.skipped.get(doc.partial, 0) + 1
        if grammar_for(file.path):
            units["code units"] += sum(1 for section in doc.sections if len(section.heading_path) > 1)
            units["code files"] += 1
        else:
            units[f"{doc.source_type} documents"] += 1
        texts.extend(c.embedding_text for c in chunk_document(doc, count_tokens, max_tokens))
    return texts, units, Counter(reader.skipped), time.perf_counter() - started


def repo_main(repo: Path, parse_only: bool) -> None:
    """Code-unit figures for one repository (see the module docstring)."""
    with tempfile.TemporaryDirectory() as state:
        engine = Engine(Settings(data_dir=Path(state), kb="bench", _env_file=None))
        count, max_tokens = engine.embedder.count_tokens, engine.embedder.max_tokens  # its tokenizer sizes chunks
        texts, units, skipped, parse_seconds = read_corpus(repo, count, max_tokens)
        files = units["code files"]
        print(f"repository        {repo}")
        others = [f"{n} {kind}" for kind, n in sorted(units.items()) if kind not in {"code files", "code units", "parse seconds"}]
        print(f"read              {files} code files -> {units['code units']} code units" + "; ".join(["", *others]))
        print("skipped           " + (", ".join(f"{n} {why}" for why, n in sorted(skipped.items())) or "nothing"))
        print(f"chunks            {len(texts)} (all files); parse and chunk {parse_seconds:.2f} s: "
              f"{files / parse_seconds:.1f} code files/s, {units['code units'] / parse_seconds:.1f} units/s "
              f"(inside the parsers {units['parse seconds']:.2f} s; the rest is reading and sizing chunks)", flush=True)
        if parse_only:
            return
        engine.embedder.encode(texts[:256])  # warm up
        started = time.perf_counter()
        for start in range(0, len(texts), 256):
            engine.embedder.encode(texts[start : start + 256])
        encode_seconds = time.perf_counter() - started
        unit_count = units["code units"]
        print(f"model.encode      {encode_seconds:7.2f} s  {len(texts) / encode_seconds:8.1f} chunks/s  "
              f"{unit_count / encode_seconds:8.1f} units/s", flush=True)
        started = time.perf_counter()
        report = engine.ingest(repo)
        pipeline_seconds = time.perf_counter() - started
    assert report.chunks_total == len(texts), (report.chunks_total, len(texts))
    print(f"pipeline          {pipeline_seconds:7.2f} s  {len(texts) / pipeline_seconds:8.1f} chunks/s  "
          f"{unit_count / pipeline_seconds:8.1f} units/s  (embedding and storing inside it: {report.embed_seconds:.2f} s)")
    print(f"efficiency        {encode_seconds / pipeline_seconds:7.3f}  (pipeline / bare model; target >= 0.85)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("corpus", nargs="?", type=Path, help="a docs corpus (default: the payload eval corpus)")
    parser.add_argument("--repo", type=Path, help="a source repository: code-unit figures")
    parser.add_argument("--parse-only", action="store_true", help="with --repo: stop before the model")
    args = parser.parse_args()
    if args.repo:
        repo_main(args.repo, args.parse_only)
        return
    corpus = args.corpus or default_corpus()
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
