"""Retrieval quality on the real Payload set in ../shared: a regression guard, not the goal.

Measured on this method: Recall@5 0.57, MRR@10 0.43 (55 labelled questions; one question is
worth 0.018). The bounds sit a little below so that a real regression fails and noise doesn't.
"""

import json

import pytest
from click.testing import CliRunner
from conftest import SHARED

from firstreply.cli import cli

PAYLOAD = SHARED / "eval" / "payload"

pytestmark = [
    pytest.mark.conformance,
    pytest.mark.skipif(not PAYLOAD.is_dir(), reason="../shared/eval/payload is absent (conformance data lives outside the repo)"),
]


def test_payload_retrieval_does_not_regress(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FIRSTREPLY_DATA_DIR", str(tmp_path / "state"))
    result = CliRunner().invoke(cli, [
        "eval", "retrieval", "--corpus", str(PAYLOAD / "corpus"), "--queries", str(PAYLOAD / "queries.jsonl"),
        "--qrels", str(PAYLOAD / "qrels.tsv"), "--json",
    ])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["queries"] == 55
    assert report["recall@5"] >= 0.53
    assert report["mrr@10"] >= 0.39
    assert report["recall@10"] >= report["recall@5"] >= report["recall@1"]
