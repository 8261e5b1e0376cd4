"""Python: one unit per module, class and function (via ``ast``), and example scripts by cell.

Library code is split along its API: each class and function becomes a section whose heading
path is its qualified name, holding its source lines (signature, docstring, body) so links
point at exactly that definition. Example scripts are read top to bottom and split at the
cell markers example galleries use (``# %%`` or a long line of ``#``).
"""

from __future__ import annotations

import ast
import re

from engine.ingest.document import Block, ParsedDocument, Section, title_from_path
from engine.ingest.plaintext import paragraphs

_CELL_MARKER = re.compile(r"^(# ?%%|#{20,})")


def _module_name(path: str) -> str:
    parts = path.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) or path


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> str:
    if isinstance(node, ast.ClassDef):
        bases = ", ".join(ast.unparse(b) for b in node.bases)
        return f"class {node.name}({bases})" if bases else f"class {node.name}"
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    return f"{prefix} {node.name}({ast.unparse(node.args)}){returns}"


def _first_line(node: ast.stmt) -> int:
    decorators: list[ast.expr] = getattr(node, "decorator_list", [])
    return min([d.lineno for d in decorators] + [node.lineno])


def _docstring_title(docstring: str | None) -> str:
    for line in (docstring or "").splitlines():
        line = line.strip()
        if line and not set(line) <= set("=-~^*#"):
            return line[:120]
    return ""


def parse_python_module(path: str, text: str) -> ParsedDocument:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return ParsedDocument(path, title_from_path(path), "code", [Section((), paragraphs(text.splitlines()))])
    lines = text.splitlines()
    module = _module_name(path)
    sections: list[Section] = []
    module_section = Section((module,))
    docstring = ast.get_docstring(tree)
    if docstring:
        module_section.blocks.append(Block(f'"""{docstring}"""', 1, tree.body[0].end_lineno or 1))

    def source(node: ast.stmt) -> Block:
        start, end = _first_line(node), node.end_lineno or node.lineno
        return Block("\n".join(lines[start - 1 : end]), start, end, is_code=True)

    def visit(body: list[ast.stmt], path_parts: tuple[str, ...]) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                sections.append(Section(path_parts + (_signature(node),), [source(node)]))
            elif isinstance(node, ast.ClassDef):
                start = _first_line(node)
                doc = ast.get_docstring(node)
                methods = [
                    _signature(n) for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                ]
                summary = _signature(node) + ":\n"
                if doc:
                    summary += f'    """{doc}"""\n'
                if methods:
                    summary += "    # methods: " + "; ".join(methods)
                first_child = next((n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), None)
                end = (_first_line(first_child) - 1) if first_child else (node.end_lineno or start)
                sections.append(Section(path_parts + (_signature(node),), [Block(summary.rstrip(), start, end, is_code=True)]))
                visit(node.body, path_parts + (node.name,))
            elif path_parts == (module,) and not (docstring and node is tree.body[0]):
                if not isinstance(node, (ast.Import, ast.ImportFrom)):
                    module_section.blocks.append(source(node))

    visit(tree.body, (module,))
    if module_section.blocks:
        sections.insert(0, module_section)
    title = _docstring_title(docstring) or module
    return ParsedDocument(path, title, "code", sections, description=_docstring_title(docstring))


def parse_example_script(path: str, text: str) -> ParsedDocument:
    lines = text.splitlines()
    try:
        docstring = ast.get_docstring(ast.parse(text))
    except (SyntaxError, ValueError):
        docstring = None
    blocks: list[Block] = []
    start = 0
    for index, line in enumerate(lines + ["# %%"]):
        if _CELL_MARKER.match(line) or index == len(lines):
            cell = "\n".join(lines[start:index]).strip("\n")
            if cell.strip():
                first = start + next(i for i, x in enumerate(lines[start:index]) if x.strip())
                blocks.append(Block(cell, first + 1, index, is_code=True))
            start = index + 1
    title = _docstring_title(docstring) or title_from_path(path)
    return ParsedDocument(path, title, "example", [Section((), blocks)], description=title)
