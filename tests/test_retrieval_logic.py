"""Pure retrieval logic: fusion, page scores, query preparation, keyword terms, metrics."""

import json

import pytest
from tests_support import hit

from engine.evaluation.retrieval import EvalDataError, LabelledQuery, evaluate, load_queries, recall_at, reciprocal_rank
from engine.index.keywords import keyword_terms
from engine.index.query import prepare_query
from engine.index.retriever import PAGE_RRF_K, Retriever, collapse_to_pages, fuse_rankings, limit_per_page, page_scores


def test_rrf_rewards_agreement_between_rankings():
    fused = fuse_rankings([["a", "b"], ["b", "c"]], k=60)
    assert [item for item, _ in fused] == ["b", "a", "c"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)


def test_rrf_scores_follow_the_formula():
    scores = dict(fuse_rankings([["a", "b", "c"], ["c", "b", "d"]], k=1))
    assert scores == pytest.approx({"a": 1 / 2, "b": 2 / 3, "c": 1 / 4 + 1 / 2, "d": 1 / 4})


def test_rrf_weights():
    order = [item for item, _ in fuse_rankings([["a"], ["b"]], weights=[1.0, 2.0])]
    assert order == ["b", "a"]


def test_page_fusion_lets_two_first_places_beat_three_middling_ones():
    # Pages: dense and chunk BM25 both put "top" first (whole-page BM25 misses it); "middling" is third everywhere.
    rankings = [["top", "x", "middling"], ["top", "y", "middling"], ["z", "w", "middling"]]
    order = [page for page, _ in fuse_rankings(rankings, k=PAGE_RRF_K)]
    assert order.index("top") < order.index("middling")
    assert Retriever(None, None, type("Keywords", (), {"chunks": []})()).page_rrf_k == PAGE_RRF_K


def test_page_scores_take_each_page_s_best_chunks():
    ranked = [("c1", 0.9), ("c2", 0.8), ("c3", 0.7), ("c4", 0.1)]
    page_of = {"c1": "p1", "c2": "p2", "c3": "p2", "c4": "p1"}
    assert page_scores(ranked, page_of, top_n=1) == {"p1": 0.9, "p2": 0.8}
    assert page_scores(ranked, page_of, top_n=2) == pytest.approx({"p1": 0.5, "p2": 0.75})


def test_collapse_and_limit_per_page():
    assert collapse_to_pages(["a", "b", "a", "c", "b"]) == ["a", "b", "c"]
    hits = [hit("1", "a"), hit("2", "a"), hit("3", "a"), hit("4", "b")]
    assert [h.chunk.id for h in limit_per_page(hits, 2)] == ["1", "2", "4"]


def test_prepare_query_removes_greetings_mentions_thanks_and_traces():
    question = (
        "Hey everyone! <@123456> @jmikrut how do I add a custom button to the admin nav?\n"
        '  File "/app/server.py", line 12, in <module>\n'
        "    at Object.<anonymous> (/app/index.js:10:5)\n"
        "Thanks in advance!"
    )
    prepared = prepare_query(question)
    assert prepared.text == "how do I add a custom button to the admin nav?"


def test_prepare_query_sends_code_to_keywords_only():
    question = "Why does this fail?\n```ts\nconst { value } = useField({ path })\n```"
    prepared = prepare_query(question)
    assert "useField" not in prepared.text
    assert "useField" in prepared.keyword_text


def test_prepare_query_prefixes_a_title_that_adds_information():
    assert prepare_query("It does not build.", title="admin styles.css").text == "admin styles.css. It does not build."
    assert prepare_query("The admin styles.css does not build", title="admin styles.css").text.startswith("The admin")


def test_prepare_query_of_code_only_still_searches():
    assert prepare_query("```\nuseFormFields()\n```").text == "useFormFields()"


def test_keyword_terms_split_identifiers_and_stem():
    terms = keyword_terms("useFormFields afterChange hooks the_snake_case")
    assert "useformfield" in terms or "useformfields" in terms
    assert {"form", "field", "hook", "snake", "case"} <= set(terms)
    assert "the" not in terms


def test_recall_and_reciprocal_rank():
    relevant = frozenset({"a", "b"})
    assert recall_at(["x", "a", "y", "b"], relevant, 3) == 0.5
    assert recall_at(["x", "a", "y", "b"], relevant, 4) == 1.0
    assert reciprocal_rank(["x", "y", "a"], relevant) == pytest.approx(1 / 3)
    assert reciprocal_rank(["x"] * 10 + ["a"], relevant) == 0.0


def test_evaluate_collapses_chunks_to_pages_before_ranking():
    queries = [LabelledQuery("q1", "?", None, frozenset({"b"}))]
    report = evaluate(queries, lambda q: ["a", "a", "a", "b"])
    assert report.recall[1] == 0.0 and report.recall[3] == 1.0
    assert report.mrr_at_10 == 0.5


def test_load_queries_joins_labels(tmp_path):
    queries = tmp_path / "q.jsonl"
    queries.write_text(json.dumps({"id": "1", "question": "q one", "title": "t"}) + "\n\n" + json.dumps({"id": 2, "question": "q two"}) + "\n")
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tdoc-path\tlines\n1\tdocs/a.md\t\n1\tdocs/b.md\t1-3\n3\tdocs/c.md\t\n")
    loaded = load_queries(queries, qrels)
    assert loaded == [LabelledQuery("1", "q one", "t", frozenset({"docs/a.md", "docs/b.md"}))]


@pytest.mark.parametrize(
    ("queries_text", "qrels_text", "message"),
    [
        ('{"id": "1", "question": "q"}\n', "id\tpath\n1\ta\n", "needs a header"),
        ("not json\n", "query-id\tdoc-path\n1\ta\n", "q.jsonl:1"),
        ('{"id": "9", "question": "q"}\n', "query-id\tdoc-path\n1\ta\n", "no question"),
    ],
)
def test_load_queries_errors_name_the_file(tmp_path, queries_text, qrels_text, message):
    (tmp_path / "q.jsonl").write_text(queries_text)
    (tmp_path / "qrels.tsv").write_text(qrels_text)
    with pytest.raises(EvalDataError, match=message):
        load_queries(tmp_path / "q.jsonl", tmp_path / "qrels.tsv")
