"""Chunking: sized to the model, code kept whole where it fits, stable ids, links."""

from pathlib import Path

from conftest import words

from engine.ingest.chunking import SPECIAL_TOKENS, chunk_document
from engine.ingest.document import Block, ParsedDocument, Section
from engine.ingest.links import LinkBuilder, slugify
from engine.ingest.markdown import parse_markdown

SAMPLE = Path(__file__).parent / "data" / "sample_project"


def doc_with(blocks: list[Block], heading=("Guide",), title="Title") -> ParsedDocument:
    return ParsedDocument("docs/page.md", title, "docs", [Section(heading, blocks)])


def test_every_chunk_fits_the_model_with_its_header():
    prose = Block(" ".join(f"word{i}." for i in range(500)), 1, 1)
    code = Block("```py\n" + "\n".join(f"x{i} = {i}" for i in range(300)) + "\n```", 2, 303, is_code=True)
    chunks = chunk_document(doc_with([prose, code]), words, max_tokens=64)
    assert len(chunks) > 10
    for chunk in chunks:
        assert words(chunk.embedding_text) + SPECIAL_TOKENS <= 64


def test_a_code_block_that_fits_is_never_split():
    before = Block(" ".join(["intro"] * 30), 1, 1)
    code = Block("```py\n" + "\n".join(["print(1)"] * 40) + "\n```", 3, 44, is_code=True)
    chunks = chunk_document(doc_with([before, code]), words, max_tokens=64)
    holding = [c for c in chunks if "print(1)" in c.text]
    assert len(holding) == 1
    assert holding[0].text.count("print(1)") == 40
    assert holding[0].text.startswith("```py") and holding[0].text.endswith("```")


def test_an_oversized_code_block_is_split_by_lines_with_exact_line_ranges():
    code = Block("\n".join(f"line_{i} = {i}" for i in range(100)), 10, 109, is_code=True)
    chunks = chunk_document(doc_with([code]), words, max_tokens=40)
    assert len(chunks) > 3
    assert chunks[0].start_line == 10 and chunks[-1].end_line == 109
    for chunk in chunks:
        first = int(chunk.text.split("\n")[0].split("_")[1].split(" ")[0])
        assert chunk.start_line == 10 + first


def test_heading_path_is_context_in_the_embedded_text():
    doc = parse_markdown("docs/guide/colors.mdx", (SAMPLE / "docs/guide/colors.mdx").read_text())
    chunks = chunk_document(doc, words, max_tokens=256)
    opacity = next(c for c in chunks if "set_opacity" in c.text)
    assert opacity.heading_path == ("Changing opacity",)
    assert opacity.embedding_text.startswith("Colors and opacity > Changing opacity\n\n")


def test_chunk_ids_are_stable_and_only_change_with_their_own_content():
    blocks = [Block("first paragraph", 1, 1), Block("x " * 80, 3, 3), Block("third paragraph", 5, 5)]
    one = chunk_document(doc_with(blocks), words, max_tokens=64)
    again = chunk_document(doc_with(blocks), words, max_tokens=64)
    assert [c.id for c in one] == [c.id for c in again]
    changed = chunk_document(doc_with(blocks[:2] + [Block("third paragraph, edited", 5, 5)]), words, max_tokens=64)
    assert len(one) == len(changed) > 1
    assert one[0].id == changed[0].id
    assert one[-1].id != changed[-1].id


def test_identical_chunks_get_distinct_ids():
    doc = ParsedDocument("a.md", "T", "docs", [Section(("H",), [Block("same", 1, 1)]), Section(("H",), [Block("same", 3, 3)])])
    ids = [c.id for c in chunk_document(doc, words, max_tokens=64)]
    assert len(set(ids)) == 2


def test_links_to_the_repository_with_line_anchors():
    links = LinkBuilder("https://github.com/org/proj", "v1.0")
    chunks = chunk_document(doc_with([Block("hello", 3, 7)]), words, 64, links)
    assert chunks[0].url == "https://github.com/org/proj/blob/v1.0/docs/page.md#L3-L7"


def test_links_through_the_docs_site_map_win_over_the_repository():
    links = LinkBuilder("https://github.com/org/proj", "main", {"docs/": "https://proj.dev/docs/"})
    assert links.url("docs/admin/hooks.mdx", 10, 20, "useField") == "https://proj.dev/docs/admin/hooks#usefield"
    assert links.url("docs/index.md") == "https://proj.dev/docs"
    assert links.url("src/a.py", 5, 5) == "https://github.com/org/proj/blob/main/src/a.py#L5"


def test_without_a_repository_the_link_is_the_path():
    assert LinkBuilder().url("docs/a.md", 1, 2) == "docs/a.md"


def test_slugify_like_github():
    assert slugify("Changing opacity!") == "changing-opacity"
    assert slugify("useField") == "usefield"


def test_markup_is_not_embedded_but_is_kept_for_display():
    text = (
        'See [the hooks page](/docs/hooks/overview) for more.\n\n<Banner type="success">\n  Use it <strong>wisely</strong>.\n</Banner>\n\n'
        "| Option | Meaning |\n| --- | :---: |\n| `depth` | how deep |\n\n```ts\nconst a = 1\n```"
    )
    chunk = chunk_document(doc_with([Block(text, 1, 12)]), words, 256)[0]
    assert chunk.text == text
    embedded = chunk.embedding_text
    assert "See the hooks page for more." in embedded
    for noise in ("/docs/hooks/overview", "<Banner", "</strong>", "---", "```"):
        assert noise not in embedded
    assert "Use it wisely" in embedded and "| `depth` | how deep |" in embedded and "const a = 1" in embedded


PAYLOAD_DOCS = Path(__file__).resolve().parents[2] / "shared" / "eval" / "payload" / "corpus" / "docs"
TABLE = "\n".join(
    ["| Option | Description |", "| --- | --- |"] + [f"| **`option{i}`** | What option {i} does, in a few words. |" for i in range(30)]
)


def test_a_long_table_is_split_between_rows_with_its_header_atop_every_piece():
    chunks = chunk_document(doc_with([Block("The following options are available:", 1, 1), Block(TABLE, 3, 34)]), words, 80)
    assert len(chunks) > 2
    assert chunks[0].text.startswith("The following options are available:\n\n| Option | Description |")
    rows = []
    for chunk in chunks:
        table = chunk.text.split("\n\n")[-1].split("\n")
        assert table[:2] == ["| Option | Description |", "| --- | --- |"]
        assert all(line.startswith("| **`option") and line.endswith("|") for line in table[2:])
        rows += table[2:]
        assert words(chunk.embedding_text) + SPECIAL_TOKENS <= 80
    assert len(rows) == 30  # every row once, none cut
    second = int(chunks[1].text.split("\n")[2].split("`option")[1].split("`")[0])
    assert chunks[1].start_line == 5 + second  # a piece's line range is its own rows (row i is on line 5 + i)


def test_a_long_list_is_split_between_items_never_inside_one():
    items = [f"{i}. Step {i}: run `cmd{i}` and then\n   check that the output says done number {i}." for i in range(1, 21)]
    chunks = chunk_document(doc_with([Block("\n".join(items), 1, 40)]), words, 64)
    assert len(chunks) > 2
    seen = []
    for chunk in chunks:
        lines = chunk.text.split("\n")
        assert lines[0][0].isdigit() and lines[-1].lstrip().startswith("check that")  # starts and ends on item bounds
        seen += [line for line in lines if line[0].isdigit()]
    assert len(seen) == 20


def test_chunk_size_is_measured_on_the_embedded_text_not_the_markup():
    linked = " ".join(f"[word{i}](https://example.org/a/very/long/link/{i})" for i in range(40))
    chunks = chunk_document(doc_with([Block(linked, 1, 1)]), lambda t: len(t), max_tokens=400)
    assert len(chunks) == 1  # 40 words fit once the link targets, which aren't embedded, are left out
    assert len(chunks[0].embedding_text) + SPECIAL_TOKENS <= 400


def test_the_payload_component_table_keeps_its_header_and_lead_in():
    page = PAYLOAD_DOCS / "admin" / "components.mdx"
    if not page.exists():
        import pytest

        pytest.skip("../shared/eval/payload is absent")
    chunks = chunk_document(parse_markdown("docs/admin/components.mdx", page.read_text()), words, 120)
    nav = [c for c in chunks if "BeforeNavLinks" in c.text]
    assert len(nav) == 1 and "| Path " in nav[0].text.split("\n")[0] + nav[0].text
    for chunk in chunks:
        for part in chunk.text.split("\n\n"):
            if part.startswith("|") and "BeforeNavLinks" in part:
                assert part.startswith("| Path")


def test_a_table_whose_rule_row_is_ragged_is_still_split_between_rows():
    # As in Payload's docs/admin/hooks.mdx: the rule row has a stray empty cell after it.
    table = "\n".join(["| Property | Description |", "|----------|-------------|          |"]
                      + [f"| **`prop{i}`** | What property {i} holds, in a few words. |" for i in range(30)])
    chunks = chunk_document(doc_with([Block("It provides the following:", 1, 1), Block(table, 3, 34)]), words, 80)
    assert len(chunks) > 2
    rows = []
    for chunk in chunks:
        lines = chunk.text.split("\n\n")[-1].split("\n")
        assert lines[0] == "| Property | Description |"  # never a piece that starts mid-row
        assert all(line.startswith("| **`prop") and line.endswith("|") for line in lines[2:])
        rows += lines[2:]
    assert len(rows) == 30


def test_pieces_of_a_long_paragraph_have_their_own_line_ranges():
    lines = [f"Sentence number {i} says a few more words about the thing." for i in range(40)]
    chunks = chunk_document(doc_with([Block("\n".join(lines), 10, 49)]), words, 64)
    assert len(chunks) > 2
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert before.end_line < after.start_line  # no two pieces claim the same lines
    for chunk in chunks:
        first = int(chunk.text.split("Sentence number ", 2)[1].split()[0])
        assert chunk.start_line == 10 + first
