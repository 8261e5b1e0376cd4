"""Sections: a retrieved chunk widened to the whole section it belongs to, as an answer's evidence."""

from conftest import words

from engine.index.retriever import Hit
from engine.index.sections import SectionMap, join_chunks
from engine.ingest.chunking import chunk_document
from engine.ingest.document import Block, ParsedDocument, Section

ROWS = [f"| **`option{i}`** | What option {i} does, in a few words. |" for i in range(30)]
TABLE = "\n".join(["| Option | Description |", "| --- | --- |", *ROWS])
STEPS = "\n".join(f"{i}. Step {i}: run `cmd{i}` and check that it printed done." for i in range(1, 13))


def chunks_of(*sections: tuple[tuple[str, ...], list[Block]], max_tokens: int = 60):
    doc = ParsedDocument("docs/page.md", "Page", "docs", [Section(h, b) for h, b in sections])
    return chunk_document(doc, words, max_tokens)


def test_a_table_split_over_chunks_is_given_whole_with_one_header():
    chunks = chunks_of((("Options",), [Block("The following options are available:", 1, 1), Block(TABLE, 3, 34)]),
                       (("Other",), [Block("Something else entirely.", 36, 36)]))
    table_chunks = [c for c in chunks if c.heading_path == ("Options",)]
    assert len(table_chunks) > 2
    matched = next(c for c in table_chunks if "option20" in c.text)
    section = SectionMap(chunks).section_of(matched)
    assert section.text == "The following options are available:\n\n" + TABLE  # one header, every row, in order
    assert (section.start_line, section.end_line) == (1, 34)
    assert (section.id, section.url) == (matched.id, matched.url)  # still names and links the match


def test_numbered_steps_split_over_chunks_are_given_whole_and_other_sections_stay_out():
    chunks = chunks_of((("Install",), [Block("To install it:", 1, 1), Block(STEPS, 3, 14)]),
                       (("Other",), [Block("Something else entirely.", 16, 16)]))
    step_chunks = [c for c in chunks if c.heading_path == ("Install",)]
    assert len(step_chunks) > 1
    section = SectionMap(chunks).section_of(step_chunks[-1])
    assert all(f"{i}. Step {i}:" in section.text for i in range(1, 13))
    assert section.text.startswith("To install it:") and "Something else" not in section.text


def test_a_long_section_is_cut_around_the_match():
    chunks = chunks_of((("Options",), [Block(TABLE, 1, 32)]))
    middle = next(c for c in chunks if "option15" in c.text)
    section = SectionMap(chunks, max_chars=3 * len(middle.text)).section_of(middle)
    assert middle.text.split("\n", 2)[2] in section.text and len(section.text) <= 3 * len(middle.text)
    assert "option0`" not in section.text or "option29`" not in section.text


def test_hits_in_a_section_already_given_are_left_out():
    chunks = chunks_of((("Options",), [Block(TABLE, 1, 32)]), (("Other",), [Block("Something else entirely.", 34, 34)]))
    table = [c for c in chunks if c.heading_path == ("Options",)]
    other = next(c for c in chunks if c.heading_path == ("Other",))
    hits = [Hit(table[1], 0.9), Hit(table[0], 0.8), Hit(other, 0.7)]
    widened = SectionMap(chunks).widen(hits, k=5)
    assert [h.chunk.id for h in widened] == [table[1].id, other.id]
    assert SectionMap(chunks).widen(hits, k=1)[0].score == 0.9


def test_joining_keeps_what_follows_a_continued_table():
    first = "Intro:\n\n| A | B |\n| - | - |\n| 1 | 2 |"
    second = "| A | B |\n| - | - |\n| 3 | 4 |\n\nAfter the table."
    assert join_chunks([first, second]) == "Intro:\n\n| A | B |\n| - | - |\n| 1 | 2 |\n| 3 | 4 |\n\nAfter the table."
    assert join_chunks(["One.", "| A |\n| - |\n| 1 |"]) == "One.\n\n| A |\n| - |\n| 1 |"


def test_a_section_that_only_leads_in_to_its_subsections_comes_with_them():
    chunks = chunks_of((("Accessing payload",), [Block("You can gain access to the payload object via two ways:", 1, 1)]),
                       (("Accessing payload", "Importing it"), [Block("Import it after it has been initialized.", 3, 3)]),
                       (("Accessing payload", "From the request"), [Block("It is on the request as req.payload.", 5, 5)]),
                       (("Other",), [Block("Something else entirely.", 7, 7)]))
    lead = next(c for c in chunks if c.heading_path == ("Accessing payload",))
    section = SectionMap(chunks).section_of(lead)
    assert section.text == ("You can gain access to the payload object via two ways:\n\n**Importing it**\n\n"
                            "Import it after it has been initialized.\n\n**From the request**\n\nIt is on the request as req.payload.")
    assert (section.start_line, section.end_line) == (1, 5)
    sub = next(c for c in chunks if c.heading_path == ("Accessing payload", "Importing it"))
    assert SectionMap(chunks).section_of(sub).text == sub.text  # a section with text of its own stays as it is


def test_a_hit_inside_a_subsection_already_given_is_left_out():
    chunks = chunks_of((("Accessing payload",), [Block("You can gain access to the payload object via two ways:", 1, 1)]),
                       (("Accessing payload", "Importing it"), [Block("Import it after it has been initialized.", 3, 3)]))
    lead, sub = chunks
    assert [h.chunk.id for h in SectionMap(chunks).widen([Hit(lead, 0.9), Hit(sub, 0.8)], k=5)] == [lead.id]
