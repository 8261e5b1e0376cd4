"""Parsers take whatever a repository holds: on any text they return blocks inside the file, never raise."""

from conftest import words
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.ingest.chunking import chunk_document
from engine.ingest.markdown import parse_markdown
from engine.ingest.plaintext import parse_text
from engine.ingest.python_source import parse_example_script, parse_python_module
from engine.ingest.rst import parse_rst

PIECES = ["# Title", "## Section", "Title\n=====", "---\ntitle: x\n---", "```py", "```", "::", "    indented",
          ".. code-block:: python", "def f(x):", "    return x", "class A:", "    '''doc'''", "# %%", "#" * 30,
          "plain words here", "", "<Banner>", "import x from 'y'", "| a | b |", "- item", "\t", "=====", "\"\"\""]
texts = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=40)), max_size=40).map("\n".join)
PARSERS = [
    ("docs/page.md", lambda p, t: parse_markdown(p, t)),
    ("docs/page.rst", lambda p, t: parse_rst(p, t)),
    ("notes.txt", parse_text),
    ("pkg/mod.py", parse_python_module),
    ("examples/demo.py", parse_example_script),
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts, st.sampled_from(PARSERS), st.integers(min_value=32, max_value=256))
def test_parsers_and_chunking_accept_any_text(text, parser, max_tokens):
    path, parse = parser
    document = parse(path, text)
    lines = len(text.splitlines())
    for section in document.sections:
        for block in section.blocks:
            assert 1 <= block.start_line <= block.end_line <= max(lines, 1)
    for chunk in chunk_document(document, words, max_tokens):
        assert chunk.text.strip()
        assert words(chunk.embedding_text) + 2 <= max_tokens or len(chunk.text.split()) <= 1
