"""The offline answerer: quotes what answers the question, cites it, abstains when unsure."""

from engine.answer.extractive import ABSTAIN_TEXT, best_passage, confidence_of, extractive_answer
from engine.index.keywords import keyword_terms
from tests_support import hit


def test_abstains_below_the_threshold_and_cites_nothing():
    answer = extractive_answer("how to zoom", [hit("1", dense=0.2)], threshold=0.3)
    assert answer.abstained and answer.text == ABSTAIN_TEXT and answer.citations == []
    assert answer.confidence == 0.2


def test_abstains_with_no_hits():
    assert extractive_answer("anything", [], threshold=0.0).abstained


def test_confidence_ignores_keyword_only_hits():
    assert confidence_of([hit("1", dense=None), hit("2", dense=0.4)]) == 0.4


def test_cites_one_passage_per_page_in_rank_order():
    hits = [hit("1", "docs/a.md", 0.8, "Zoom with scene.zoom(2)."), hit("2", "docs/a.md", 0.7, "More on zoom."),
            hit("3", "docs/b.md", 0.6, "The camera also zooms.")]
    answer = extractive_answer("how do I zoom", hits, threshold=0.3)
    assert not answer.abstained
    assert [c.path for c in answer.citations] == ["docs/a.md", "docs/b.md"]
    assert [c.number for c in answer.citations] == [1, 2]
    assert "scene.zoom(2). [1]" not in answer.text and "[1]" in answer.text and "[2]" in answer.text
    assert answer.citations[0].url == "https://x.test/docs/a.md#L1-L3"


def test_best_passage_keeps_the_matching_paragraph_and_its_code():
    text = "\n\n".join([
        "Installation is covered elsewhere.",
        "To change opacity call set_opacity on the actor.",
        "```python\nactor.set_opacity(0.5)\n```",
        "Unrelated closing remarks about licensing and history of the project " * 8,
    ])
    passage = best_passage(set(keyword_terms("how do I change the opacity")), text)
    assert passage.startswith("To change opacity")
    assert "actor.set_opacity(0.5)" in passage
    assert "licensing" not in passage
