"""Each format's parser: titles, heading paths, blocks and exact line ranges."""

from pathlib import Path

import pytest

from engine.ingest.markdown import parse_front_matter, parse_markdown
from engine.ingest.notebook import NotebookError, parse_notebook
from engine.ingest.plaintext import parse_text
from engine.ingest.python_source import parse_example_script, parse_python_module
from engine.ingest.rst import parse_rst
from engine.ingest.sources import parser_for

SAMPLE = Path(__file__).parent / "data" / "sample_project"


def read(rel: str) -> str:
    return (SAMPLE / rel).read_text(encoding="utf-8")


def lines_of(rel: str, start: int, end: int) -> str:
    return "\n".join(read(rel).splitlines()[start - 1 : end])


def test_front_matter_is_read_and_its_lines_counted():
    fields, lines = parse_front_matter(read("docs/guide/install.md"))
    assert fields == {"title": "Installing tinyviz", "desc": "How to install tinyviz with pip or from source."}
    assert lines == 4


def test_markdown_sections_follow_headings_and_keep_code_fences_whole():
    doc = parse_markdown("docs/guide/install.md", read("docs/guide/install.md"))
    assert doc.title == "Installing tinyviz"
    assert doc.description.startswith("How to install")
    assert [s.heading_path for s in doc.sections] == [(), ("With pip",), ("From source",)]
    fences = [b for s in doc.sections for b in s.blocks if b.is_code]
    assert [f.text.splitlines()[0] for f in fences] == ["```bash", "```bash"]
    # the MDX import line is build plumbing and is not indexed
    assert not any("import { Banner }" in b.text for s in doc.sections for b in s.blocks)


def test_markdown_block_lines_match_the_file():
    doc = parse_markdown("docs/guide/install.md", read("docs/guide/install.md"))
    for section in doc.sections:
        for block in section.blocks:
            assert lines_of("docs/guide/install.md", block.start_line, block.end_line) == block.text


def test_mdx_h1_becomes_the_title_and_leaves_the_heading_path():
    doc = parse_markdown("docs/guide/colors.mdx", read("docs/guide/colors.mdx"))
    assert doc.title == "Colors and opacity"
    assert ("Changing opacity",) in [s.heading_path for s in doc.sections]


def test_markdown_without_headings_or_front_matter_is_titled_from_its_path():
    doc = parse_markdown("docs/faq/index.md", "Just one paragraph.\n")
    assert doc.title == "faq index"
    assert doc.sections[0].blocks[0].text == "Just one paragraph."


def test_rst_titles_levels_and_literal_blocks():
    doc = parse_rst("docs/guide/camera.rst", read("docs/guide/camera.rst"))
    assert doc.title == "Camera basics"
    assert [s.heading_path for s in doc.sections] == [(), ("Moving the camera",), ("Moving the camera", "Zooming")]
    moving = doc.sections[1].blocks
    # the paragraph ending in '::' keeps its indented literal block
    assert len(moving) == 1 and "scene.reset_camera()" in moving[0].text
    zoom_code = [b for b in doc.sections[2].blocks if b.is_code]
    assert zoom_code and "scene.zoom(0.5)" in zoom_code[0].text
    for section in doc.sections:
        for block in section.blocks:
            assert lines_of("docs/guide/camera.rst", block.start_line, block.end_line).strip("\n") == block.text


def test_python_module_has_one_unit_per_class_and_function_with_line_ranges():
    doc = parse_python_module("src/tinyviz/utils.py", read("src/tinyviz/utils.py"))
    assert doc.title == "Small helpers for colors and arrays."
    paths = [s.heading_path for s in doc.sections]
    assert ("src.tinyviz.utils", "def numpy_to_colors(array, alpha=DEFAULT_ALPHA)") in paths
    assert ("src.tinyviz.utils", "class ColorMap") in paths
    assert ("src.tinyviz.utils", "ColorMap", "def __call__(self, values)") in paths
    function = doc.sections[paths.index(("src.tinyviz.utils", "def numpy_to_colors(array, alpha=DEFAULT_ALPHA)"))].blocks[0]
    assert function.text.startswith("def numpy_to_colors(")
    assert "Parameters" in function.text  # the docstring travels with the signature
    assert lines_of("src/tinyviz/utils.py", function.start_line, function.end_line) == function.text
    class_summary = doc.sections[paths.index(("src.tinyviz.utils", "class ColorMap"))].blocks[0].text
    assert "Maps scalar values to colors." in class_summary and "def __call__(self, values)" in class_summary


def test_python_with_a_syntax_error_falls_back_to_text():
    doc = parse_python_module("broken.py", "def broken(:\n    pass\n")
    assert doc.sections and "def broken(" in doc.sections[0].blocks[0].text


def test_example_script_is_split_at_cells_and_titled_by_its_docstring():
    doc = parse_example_script("examples/viz_spheres.py", read("examples/viz_spheres.py"))
    assert doc.title == "Rendering many spheres"
    assert doc.source_type == "example"
    blocks = doc.sections[0].blocks
    assert len(blocks) == 3
    assert "spheres.set_opacity(0.5)" in blocks[1].text
    assert "window.show(scene)" in blocks[2].text


def test_notebook_markdown_and_code_cells():
    doc = parse_notebook("examples/first_scene.ipynb", read("examples/first_scene.ipynb"))
    assert doc.title == "Tutorial: a first scene"
    assert doc.has_lines is False
    code = [b for s in doc.sections for b in s.blocks if b.is_code]
    assert code and "actor.cube" in code[0].text
    assert any(s.heading_path[-1:] == ("Saving a screenshot",) for s in doc.sections)


def test_a_file_that_is_not_a_notebook_is_a_clear_error():
    with pytest.raises(NotebookError, match="not a Jupyter notebook"):
        parse_notebook("x.ipynb", "{not json")


def test_plain_text_paragraphs():
    doc = parse_text("docs/CHANGELOG.txt", read("docs/CHANGELOG.txt"))
    assert doc.title == "tinyviz changelog"
    assert [b.start_line for b in doc.sections[0].blocks] == [1, 3, 5]


@pytest.mark.parametrize(
    ("path", "expected"),
    [("a.md", "docs"), ("a.mdx", "docs"), ("examples/a.md", "example"), ("a.rst", "docs"), ("a.txt", "text"),
     ("pkg/a.py", "code"), ("examples/a.py", "example"), ("a.ipynb", "notebook")],
)
def test_parser_choice_by_path(path, expected):
    text = '{"cells": []}' if path.endswith(".ipynb") else "x = 1\n" if path.endswith(".py") else "Some text.\n"
    parser = parser_for(path)
    assert parser is not None and parser(path, text).source_type == expected


@pytest.mark.parametrize("path", ["logo.png", "data.json", "Makefile", "shader.frag"])
def test_unknown_formats_have_no_parser(path):
    assert parser_for(path) is None
