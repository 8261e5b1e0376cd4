"""How useful the offline extractive answerer's answers are, on real Payload CMS questions.

    python -m bench.extractive_quality --data /tmp/fr15c/data-after            # ingest, then ask
    python -m bench.extractive_quality --data /tmp/fr15c/data-before --no-ingest  # an index built earlier
    python -m bench.extractive_quality --data /tmp/fr15c/data-after --no-ingest --all  # and the labelled questions

Ingests ``../shared/eval/payload/corpus`` into the knowledge base ``payload`` of the data folder
(unless ``--no-ingest``), then asks a fixed set of questions through the whole answer pipeline
with no LLM configured: ten real questions from the Payload Discord help forum
(``queries.jsonl``, title and text as asked) whose answer is in the docs, and three questions
about other products. The rule is transparent: an answerable question counts as useful when the
answer quotes the phrase a human helper pointed to (any one of the listed phrases, case-blind)
and quotes no fragment (a table row without its table's header, a section that ends on "…:");
an off-topic one counts when the engine abstains. ``--show`` prints every answer.

``--all`` also asks every question of ``queries.jsonl`` (all are about Payload, so each abstention
is a false one) and prints the false abstentions and the answers that quote a fragment; over those labelled in ``qrels.tsv``, the
page-level Recall@5 and MRR@10 of retrieval (as ``firstreply eval retrieval``) and of the sources
each answer was given, and the share of answers that cite a relevant page.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
from pathlib import Path

SHARED = Path(os.environ.get("FIRSTREPLY_PAYLOAD_EVAL", Path(__file__).resolve().parents[1].parent / "shared" / "eval" / "payload"))

#: query id -> phrases of which one must be quoted (taken from the human replies in the thread).
ANSWERABLE = {
    "dc-1068171728028700802": ("payload.create",),  # Wordpress import: a script on the Local API
    "dc-1077196324912513084": ("local: true",),  # REPL / one-off script: the standalone Local API script
    "dc-1078662484812120154": ("sameSite",),  # cookie not set cross-site: the cookies options
    "dc-1084059620718415902": ("BeforeNavLinks",),  # a button in the Nav: BeforeNavLinks / AfterNavLinks
    "dc-1085945208828608552": ("fileSize",),  # max upload size: the Payload-wide upload limits
    "dc-1083383056771055747": ("displayFormat",),  # date format in the admin: admin.date.displayFormat
    "dc-1084500782612754493": ("imageSizes",),  # aspect ratios and crops: image sizes
    "dc-1069381194162131005": ("alias",),  # webpack polyfills: alias server-only modules
    "dc-1084414779348754442": ("serverURL",),  # forgot-password link without the root: serverURL
    "dc-1080817423311187988": ("sort",),  # ordering relationship items: sort
}
OFF_TOPIC = (
    "What is Strapi's GraphQL depth limit?",
    "How do I configure pagination in Django REST framework?",
    "Does Contentful support webhooks for content model changes?",
)


def questions() -> list[dict]:
    by_id = {}
    with (SHARED / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record["id"] in ANSWERABLE:
                by_id[record["id"]] = record
    items = [{"id": qid, "title": by_id[qid]["title"], "text": by_id[qid]["question"].strip() or by_id[qid]["title"],
              "expect": phrases} for qid, phrases in ANSWERABLE.items()]
    items += [{"id": f"off-topic-{n}", "title": None, "text": text, "expect": None} for n, text in enumerate(OFF_TOPIC, 1)]
    return items


_RULE = re.compile(r"^\s*\|?\s*:?-{3,}")


def fragments(text: str) -> list[str]:
    """Quoted pieces that can't stand alone: a table without its header row, a section ending on "…:"."""
    found = []
    text = text.removeprefix("Here is what the documentation says:").lstrip("\n")  # the answerer's own opening
    for section in re.split(r"\n\n(?=\*\*[^*\n]+\*\* \[\d+\]\n)", text):
        lines = section.split("\n")
        for i, line in enumerate(lines):
            starts_table = line.lstrip().startswith("|") and (i == 0 or not lines[i - 1].lstrip().startswith("|"))
            if starts_table and not (i + 1 < len(lines) and _RULE.match(lines[i + 1])):
                found.append(f"table without its header: {line[:60]}")
        if section.rstrip().endswith(":"):
            found.append(f"ends on a lead-in: {section.rstrip()[-60:]}")
    return found


def useful(item: dict, answer) -> bool:
    """Off-topic: abstained. Answerable: answered, quoting an expected phrase, with no fragment."""
    if item["expect"] is None:
        return answer.abstained
    return (not answer.abstained and any(p.lower() in answer.text.lower() for p in item["expect"])
            and not fragments(answer.text))


async def labelled(engine) -> None:
    """Abstentions over every question of queries.jsonl (all are about Payload: each is a false one), and
    over the labelled ones page-level R@5 / MRR@10 of retrieval (as ``firstreply eval retrieval``) and of
    the sources each answer was given, and how many answers cite a relevant page."""
    from engine.answer.model import Question
    from engine.evaluation.retrieval import load_queries, recall_at, reciprocal_rank
    from engine.index.retriever import collapse_to_pages

    relevant = {q.id: q.relevant for q in load_queries(SHARED / "queries.jsonl", SHARED / "qrels.tsv")}
    with (SHARED / "queries.jsonl").open(encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    abstained, fragmented, figures = 0, 0, {"retrieval R@5": 0.0, "retrieval MRR@10": 0.0, "sources R@5": 0.0,
                             "sources MRR@10": 0.0, "cite a relevant page": 0.0}
    for record in records:
        text, title = record["question"].strip() or record.get("title") or "", record.get("title")
        answer = await engine.answer(Question(text, channel="web", title=title, kb="payload"))
        abstained += answer.abstained
        fragmented += bool(fragments(answer.text))
        if record["id"] not in relevant:
            continue
        wanted = relevant[record["id"]]
        ranked = collapse_to_pages([h.chunk.path for h in engine.search(text, k=30, kb="payload", title=title)])
        sources = collapse_to_pages([h.chunk.path for h in answer.hits])
        for name, pages in (("retrieval", ranked), ("sources", sources)):
            figures[f"{name} R@5"] += recall_at(pages, wanted, 5)
            figures[f"{name} MRR@10"] += reciprocal_rank(pages, wanted)
        figures["cite a relevant page"] += any(c.path in wanted for c in answer.citations)
    print(f"questions: {len(records)}  false abstentions: {abstained}  answers quoting a fragment: {fragmented}")
    print(f"labelled: {len(relevant)}  " + "  ".join(f"{k} {v / len(relevant):.3f}" for k, v in figures.items()))


async def run(data: Path, ingest: bool, show: bool, all_labelled: bool = False) -> None:
    os.environ.pop("FIRSTREPLY_PROVIDERS", None)
    from engine.answer.model import Question
    from engine.config import load_settings
    from engine.service import Engine

    engine = Engine(load_settings(data_dir=data, kb="payload", providers=[]))
    if ingest:
        report = await asyncio.to_thread(engine.ingest, SHARED / "corpus", kb="payload")
        print(f"ingested: {report}")
    scores = {"answerable": 0, "off-topic": 0}
    async with engine:
        for item in questions():
            answer = await engine.answer(Question(item["text"], channel="web", title=item["title"], kb="payload"))
            ok = useful(item, answer)
            scores["answerable" if item["expect"] else "off-topic"] += ok
            label = item["title"] or item["text"]
            print(f"{'USEFUL ' if ok else 'no     '} {'abstained' if answer.abstained else 'answered '} "
                  f"conf {answer.confidence:.2f}  {label[:70]}")
            for problem in fragments(answer.text):
                print(f"        fragment: {problem}")
            if show:
                print("    " + answer.text.replace("\n", "\n    ") + "\n")
        total = scores["answerable"] + scores["off-topic"]
        print(f"\nuseful: {total}/{len(ANSWERABLE) + len(OFF_TOPIC)}  (answerable {scores['answerable']}/{len(ANSWERABLE)}, "
              f"off-topic abstained {scores['off-topic']}/{len(OFF_TOPIC)})")
        if all_labelled:
            await labelled(engine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="data folder (index and database)")
    parser.add_argument("--no-ingest", action="store_true", help="use the index already in --data")
    parser.add_argument("--show", action="store_true", help="print every answer")
    parser.add_argument("--all", action="store_true", help="also ask every question of queries.jsonl")
    args = parser.parse_args()
    asyncio.run(run(args.data, not args.no_ingest, args.show, args.all))


if __name__ == "__main__":
    main()
