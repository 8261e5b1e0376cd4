"""Source code in the languages projects are written in: one unit per function, class, method and type.

TypeScript/TSX, JavaScript, Go, Rust, Java, C and C++ are parsed with tree-sitter (the grammars are
the official ``tree-sitter-*`` packages, installed with firstreply; nothing is downloaded at run time).
Python keeps :mod:`engine.ingest.python_source` (``ast``), and the document built here mirrors it:

- every function, method, interface, struct, trait, enum and type alias is a section whose heading path
  is the module, the names of the classes (or namespaces) around it, then its signature; its one block
  is its source lines, doc comment and decorators included, so a link points at exactly that definition;
- a class-like container (class, impl, trait, C++ struct) is a section of its own whose first block is
  its doc comment, its lines up to its first member unit and a list of its members' signatures (fields
  declared after a method follow as blocks of their own); its members follow as sections of their own,
  named ``Class.member``;
- what is left at the top level (constants, statements), less imports and comments, is the module's
  section.

A unit's kind, qualified name, signature (the declaration up to its body), doc comment and exact
1-based line range are :class:`CodeUnit`. A file with syntax errors still yields every unit tree-sitter
could parse; the document says so in :attr:`ParsedDocument.partial`. Functions too big for one chunk
are cut by lines by the chunker, as Python's are.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Callable

from engine.ingest.document import Block, ParsedDocument, Section

if TYPE_CHECKING:  # tree_sitter is imported when a code file is first parsed
    from tree_sitter import Language, Node, Parser

#: What :attr:`ParsedDocument.partial` says of a file tree-sitter could only partly parse.
SYNTAX_ERRORS = "syntax errors (read what parses)"
_MAX_SIGNATURE = 300
#: Classes and namespaces nested deeper than this are read as part of the unit around them, so hostile
#: input (thousands of nested namespaces) can't exhaust Python's stack.
MAX_NESTING = 64


@dataclass(frozen=True, slots=True)
class Grammar:
    """How one language's syntax tree maps to units (node types are the grammar's own names)."""

    name: str
    language: Callable[[], object]  # the grammar package's ``language()``: a capsule tree-sitter wraps
    units: dict[str, str]  # node type -> kind, for definitions read whole
    containers: dict[str, str]  # node type -> kind, for definitions whose members are units of their own
    members: dict[str, str]  # inside a container's body: node type -> kind
    scopes: frozenset[str]  # namespaces and modules: their names qualify what is inside, no unit of their own
    transparent: frozenset[str]  # wrappers read as if their children stood in their place (export, template)
    skipped: frozenset[str]  # imports, package clauses: not part of the module's text
    doc_prefixes: tuple[str, ...]  # a comment directly above a unit is its doc comment when it starts so
    comments: frozenset[str] = frozenset({"comment"})
    attributes: frozenset[str] = frozenset()  # siblings above a unit that belong to it (Rust's ``#[...]``)


def _ts_language(attr: str) -> Callable[[], object]:
    def load() -> object:
        import tree_sitter_typescript

        return getattr(tree_sitter_typescript, attr)()
    return load


def _module_language(module: str) -> Callable[[], object]:
    def load() -> object:
        import importlib

        return importlib.import_module(module).language()
    return load


_JS_UNITS = {"function_declaration": "function", "generator_function_declaration": "function"}
_JS_CONTAINERS = {"class_declaration": "class", "class": "class"}
_JS_MEMBERS = {"method_definition": "method"}
_JS_TRANSPARENT = frozenset({"export_statement", "ERROR"})
_JS_SKIPPED = frozenset({"import_statement", "decorator"})
_TS_UNITS = {**_JS_UNITS, "function_signature": "function", "interface_declaration": "interface",
             "type_alias_declaration": "type", "enum_declaration": "enum"}
_TS_CONTAINERS = {**_JS_CONTAINERS, "abstract_class_declaration": "class"}
_TS_MEMBERS = {**_JS_MEMBERS, "abstract_method_signature": "method", "method_signature": "method"}
_TS_SCOPES = frozenset({"internal_module", "module"})
_TS_TRANSPARENT = _JS_TRANSPARENT | {"ambient_declaration", "expression_statement"}
_C_UNITS = {"function_definition": "function", "struct_specifier": "struct", "union_specifier": "struct",
            "enum_specifier": "enum", "type_definition": "type"}

GRAMMARS: dict[str, Grammar] = {
    "typescript": Grammar("typescript", _ts_language("language_typescript"), _TS_UNITS, _TS_CONTAINERS, _TS_MEMBERS,
                          _TS_SCOPES, _TS_TRANSPARENT, _JS_SKIPPED, ("/**",)),
    "tsx": Grammar("tsx", _ts_language("language_tsx"), _TS_UNITS, _TS_CONTAINERS, _TS_MEMBERS,
                   _TS_SCOPES, _TS_TRANSPARENT, _JS_SKIPPED, ("/**",)),
    "javascript": Grammar("javascript", _module_language("tree_sitter_javascript"), _JS_UNITS, _JS_CONTAINERS,
                          _JS_MEMBERS, frozenset(), _JS_TRANSPARENT, _JS_SKIPPED, ("/**",)),
    "go": Grammar("go", _module_language("tree_sitter_go"),
                  {"function_declaration": "function", "method_declaration": "method", "type_spec": "type",
                   "type_alias": "type"},
                  {}, {}, frozenset(), frozenset({"type_declaration", "ERROR"}),
                  frozenset({"package_clause", "import_declaration"}), ("//",)),
    "rust": Grammar("rust", _module_language("tree_sitter_rust"),
                    {"function_item": "function", "function_signature_item": "function", "struct_item": "struct",
                     "enum_item": "enum", "union_item": "struct", "type_item": "type", "macro_definition": "macro"},
                    {"impl_item": "impl", "trait_item": "trait"},
                    {"function_item": "method", "function_signature_item": "method"},
                    frozenset({"mod_item"}), frozenset({"ERROR"}),
                    frozenset({"use_declaration", "extern_crate_declaration", "inner_attribute_item"}),
                    ("///", "/**"), comments=frozenset({"line_comment", "block_comment"}),
                    attributes=frozenset({"attribute_item"})),
    "java": Grammar("java", _module_language("tree_sitter_java"), {"annotation_type_declaration": "interface"},
                    {"class_declaration": "class", "interface_declaration": "interface", "enum_declaration": "enum",
                     "record_declaration": "class"},
                    {"method_declaration": "method", "constructor_declaration": "method",
                     "compact_constructor_declaration": "method"},
                    frozenset(), frozenset({"ERROR"}), frozenset({"package_declaration", "import_declaration"}),
                    ("/**",), comments=frozenset({"line_comment", "block_comment"})),
    "c": Grammar("c", _module_language("tree_sitter_c"), _C_UNITS, {}, {}, frozenset(),
                 frozenset({"ERROR", "preproc_ifdef", "preproc_if", "preproc_else", "linkage_specification",
                            "declaration_list"}),
                 frozenset({"preproc_include"}), ("/**", "///", "//")),
    "cpp": Grammar("cpp", _module_language("tree_sitter_cpp"), {**_C_UNITS, "alias_declaration": "type"},
                   {"class_specifier": "class", "struct_specifier": "struct"},
                   {"function_definition": "method", "field_declaration": "method", "declaration": "method"},
                   frozenset({"namespace_definition"}),
                   frozenset({"ERROR", "template_declaration", "preproc_ifdef", "preproc_if", "preproc_else",
                              "linkage_specification", "declaration_list"}),
                   frozenset({"preproc_include", "using_declaration"}), ("/**", "///", "//")),
}

#: File suffix -> grammar name.
SUFFIXES: dict[str, str] = {
    "ts": "typescript", "mts": "typescript", "cts": "typescript", "tsx": "tsx",
    "js": "javascript", "jsx": "javascript", "mjs": "javascript", "cjs": "javascript",
    "go": "go", "rs": "rust", "java": "java", "c": "c",
    "h": "cpp", "cc": "cpp", "cpp": "cpp", "cxx": "cpp", "hh": "cpp", "hpp": "cpp", "hxx": "cpp",
}


@dataclass(frozen=True, slots=True)
class CodeUnit:
    """One definition: its kind, qualified name, signature, doc comment and 1-based line range."""

    kind: str  # function | method | class | interface | struct | trait | impl | enum | type | macro
    name: str  # qualified by the classes and namespaces around it: ``Class.method``
    signature: str  # the declaration up to its body, on one line
    doc: str  # the doc comment's words, without comment markers ("" when none)
    start_line: int  # first line: the doc comment's, or the decorators', or the declaration's
    end_line: int  # last line of the definition
    members: tuple[str, ...] = ()  # a container's member signatures
    text_end_line: int = 0  # a container's block ends here (before its first member); else end_line
    scope: tuple[str, ...] = field(default=())  # enclosing class and namespace names, outermost first
    fields: tuple[tuple[int, int], ...] = ()  # a container's line ranges after its first member that no member holds


_parsers = threading.local()


@cache
def _language(name: str) -> Language:
    from tree_sitter import Language

    return Language(GRAMMARS[name].language())


def _parser(name: str) -> Parser:  # one per thread, as a parser is not safe to share
    cached: Parser | None = getattr(_parsers, name, None)
    if cached is None:
        from tree_sitter import Parser

        cached = Parser(_language(name))
        setattr(_parsers, name, cached)
    return cached


def grammar_for(path: str) -> str | None:
    """The grammar name for a file, by its suffix; None when tree-sitter code units don't read it."""
    name = path.rsplit("/", 1)[-1].lower()
    return SUFFIXES.get(name.rsplit(".", 1)[-1]) if "." in name else None


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "replace")


def _last_line(node: Node) -> int:
    """A node's last 1-based line; a node that ends at column 0 (a ``///`` comment and its newline) ends above."""
    row, column = node.end_point
    return row if column == 0 and row > node.start_point[0] else row + 1


def _doc_text(comments: list[str]) -> str:
    lines: list[str] = []
    for comment in comments:
        body = comment.strip()
        if body.startswith("/*"):
            body = body.removeprefix("/**").removeprefix("/*").removesuffix("*/")
            for line in body.splitlines():
                lines.append(re.sub(r"^\s*\*? ?", "", line).rstrip())
        else:
            lines.append(re.sub(r"^//[/!]? ?", "", body).rstrip())
    return "\n".join(lines).strip()


def _declarator_name(node: Node | None) -> str:
    """The name in a C/C++ declarator chain (``*f(int)``, ``Foo::bar()``, ``(*fp)[3]``)."""
    while node is not None:
        if node.type in {"identifier", "field_identifier", "type_identifier", "destructor_name",
                         "operator_name", "qualified_identifier", "primitive_type"}:
            return _text(node).replace("::", ".")
        inner = node.child_by_field_name("declarator")
        if inner is None:
            inner = next((c for c in node.named_children if c.type.endswith("declarator") or c.type == "identifier"), None)
        node = inner
    return ""


def _name(node: Node, grammar: Grammar) -> str:
    if grammar.name == "rust" and node.type == "impl_item":
        return _text(node.child_by_field_name("type") or node).split("<", 1)[0]
    named = node.child_by_field_name("name")
    if named is not None:
        return _text(named).strip("'\"")
    declarator = node.child_by_field_name("declarator")
    if declarator is not None:
        return _declarator_name(declarator)
    if node.type in {"class", "function_expression", "arrow_function"}:
        return "default"
    return ""


def _go_receiver(node: Node) -> str:
    receiver = node.child_by_field_name("receiver")
    if receiver is None:
        return ""
    names = [c for c in _walk(receiver) if c.type == "type_identifier"]
    return _text(names[0]) if names else ""


def _walk(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.named_children))


def _body(node: Node) -> Node | None:
    body = node.child_by_field_name("body")
    if body is not None:
        return body
    kind = node.child_by_field_name("type")  # Go's ``type Foo struct {...}``: the struct's fields
    if kind is not None and kind.type in {"struct_type", "interface_type"}:
        return next((c for c in kind.children if c.type in {"field_declaration_list", "{"}), None) or kind
    if node.type in {"lexical_declaration", "variable_declaration"}:
        node = next((c for c in node.named_children if c.type == "variable_declarator"), node)
    value = node.child_by_field_name("value")  # ``const f = () => ...``, ``export default function () {}``
    if value is not None and value.type in _FUNCTION_VALUES:
        return value.child_by_field_name("body")
    return None


def _signature(node: Node, source: bytes) -> str:
    body = _body(node)
    if body is not None and body.start_byte > node.start_byte:
        text = source[node.start_byte : body.start_byte].decode("utf-8", "replace")
    else:
        text = _text(node).split("{", 1)[0]
        if node.type in {"type_alias_declaration", "type_item"}:  # ``type Options = string``; a long one by its head
            text = _text(node).splitlines()[0].rstrip().rstrip("{([").rstrip()
    text = re.sub(r"\s+", " ", text).strip().rstrip("{;=").strip()
    if node.type == "type_spec" and not text.startswith("type "):
        text = "type " + text
    return text[:_MAX_SIGNATURE]


_FUNCTION_VALUES = {"arrow_function", "function_expression", "function", "generator_function"}


def _function_declarator(node: Node) -> bool:
    """A C/C++ declaration that declares a function (a prototype), not a variable."""
    declarator = node.child_by_field_name("declarator")
    while declarator is not None:
        if declarator.type == "function_declarator":
            return True
        declarator = declarator.child_by_field_name("declarator")
    return False


class _Extractor:
    def __init__(self, grammar: Grammar, source: bytes) -> None:
        self.grammar = grammar
        self.source = source
        self.units: list[CodeUnit] = []
        self.leftovers: list[tuple[int, int]] = []  # top-level line ranges that are no unit

    def doc_and_start(self, node: Node, siblings: list[Node], index: int) -> tuple[str, int]:
        """The doc comment directly above ``siblings[index]`` and the line its unit starts on."""
        start = node.start_point[0] + 1
        comments: list[str] = []
        above = start
        i = index - 1
        while i >= 0:
            sibling = siblings[i]
            if _last_line(sibling) < above - 1:
                break
            if sibling.type in self.grammar.attributes:
                above = sibling.start_point[0] + 1
                start = above
            elif sibling.type in self.grammar.comments and _text(sibling).startswith(self.grammar.doc_prefixes):
                if _text(sibling).startswith(("//!", "/*!")):
                    break  # inner doc of the enclosing module, not of this unit
                comments.insert(0, _text(sibling))
                above = sibling.start_point[0] + 1
                start = above
                if _text(sibling).startswith("/*"):
                    break  # one block comment is the whole doc; ``//`` lines may run on upwards
            else:
                break
            i -= 1
        return _doc_text(comments), start

    def unit_kind(self, node: Node, in_container: bool) -> tuple[str, str] | None:
        """(kind, role) of a node: role is "unit", "container" or "scope"; None when it is none of them."""
        grammar = self.grammar
        if in_container and node.type in grammar.members:
            if node.type in {"field_declaration", "declaration"} and not _function_declarator(node):
                return None
            return grammar.members[node.type], "unit"
        if node.type in grammar.containers:
            return grammar.containers[node.type], "container"
        if node.type in grammar.scopes:
            return "namespace", "scope"
        if node.type in grammar.units:
            kind = grammar.units[node.type]
            if node.type in {"struct_specifier", "union_specifier", "enum_specifier"} and node.child_by_field_name("body") is None:
                return None  # a use of the type (``struct foo *p``), not its definition
            if node.type == "type_spec":
                type_node = node.child_by_field_name("type")
                kind = {"struct_type": "struct", "interface_type": "interface"}.get(type_node.type if type_node else "", "type")
            return kind, "unit"
        if node.type == "declaration" and grammar.name in {"c", "cpp"} and _function_declarator(node):
            return "function", "unit"
        if node.type in {"lexical_declaration", "variable_declaration"}:  # ``const f = () => {}``
            declarators = [c for c in node.named_children if c.type == "variable_declarator"]
            value = declarators[0].child_by_field_name("value") if len(declarators) == 1 else None
            if value is not None and value.type in _FUNCTION_VALUES:
                return "function", "unit"
        if node.type == "export_statement":  # ``export default function () {}``, ``export default class {}``
            value = node.child_by_field_name("value")
            if value is not None and value.type in _FUNCTION_VALUES | {"class"}:
                return ("class", "container") if value.type == "class" else ("function", "unit")
        return None

    def visit(self, nodes: list[Node], scope: tuple[str, ...], loose: list[tuple[int, int]] | None,
              in_container: bool = False,
              wrapper: tuple[list[Node], int] | None = None, depth: int = 0) -> list[CodeUnit]:
        """Record the units among ``nodes`` (siblings, in order); return those found at this level.

        ``loose`` gathers the line ranges of what is no unit: the module's, a namespace's, a class's fields;
        ``wrapper`` is the transparent node these were read out of (``export``, Go's ``type``) as
        (its siblings, its index): the doc comment above it belongs to its first definition."""
        found: list[CodeUnit] = []
        if depth > MAX_NESTING:
            return found
        leading = True  # no definition yet among these siblings: the wrapper's doc comment is still unclaimed
        for index, node in enumerate(nodes):
            if not node.is_named or node.type in self.grammar.comments:
                continue
            role = self.unit_kind(node, in_container)
            if role is None and node.type in self.grammar.transparent:
                found += self.visit([c for c in node.children if c.is_named], scope, loose, in_container,
                                    wrapper=(nodes, index), depth=depth + 1)
                leading = False
                continue
            if role is None:
                if loose is not None and node.type not in self.grammar.skipped:
                    loose.append((node.start_point[0] + 1, _last_line(node)))
                if node.type != "decorator":
                    leading = False
                continue
            kind, what = role
            doc, start = self.doc_and_start(node, nodes, index)
            if leading and wrapper is not None:  # ``/** doc */ export function f``: the doc sits above the export
                outer_doc, outer_start = self.doc_and_start(wrapper[0][wrapper[1]], *wrapper)
                doc, start = doc or outer_doc, min(start, outer_start)
            leading = False
            named = self._named(node)
            name = _name(named, self.grammar)
            if self.grammar.name == "go" and node.type == "method_declaration":
                receiver = _go_receiver(node)
                name = f"{receiver}.{name}" if receiver else name
            if what == "scope":
                body = node.child_by_field_name("body")
                if body is not None:
                    found += self.visit(list(body.children), scope + (name,), loose, depth=depth + 1)
                continue
            qualified = ".".join((*scope, name)) if name else ".".join(scope) or "?"
            signature = _signature(named if node.type == "export_statement" else node, self.source)
            end = _last_line(node)
            if what == "container":
                position = len(self.units)
                self.units.append(CodeUnit(kind, qualified, signature, doc, start, end, scope=scope))
                body = _body(named)
                fields: list[tuple[int, int]] = []
                members = self.visit(list(body.children) if body is not None else [], scope + (name,), fields,
                                     in_container=True, depth=depth + 1)
                text_end = max(start, min((m.start_line for m in members), default=end + 1) - 1)
                later = tuple(r for r in fields if r[0] > text_end and r[1] < end)  # fields after the first method
                self.units[position] = CodeUnit(kind, qualified, signature, doc, start, end,
                                                tuple(m.signature for m in members), text_end, scope, later)
                found.append(self.units[position])
            else:
                self.units.append(CodeUnit(kind, qualified, signature, doc, start, end, scope=scope))
                found.append(self.units[-1])
        return found

    @staticmethod
    def _named(node: Node) -> Node:
        """The node that carries the name and body: an ``export default``'s value, a ``const``'s declarator."""
        if node.type == "export_statement":
            return node.child_by_field_name("value") or node
        if node.type in {"lexical_declaration", "variable_declaration"}:
            return next(c for c in node.named_children if c.type == "variable_declarator")
        return node


def extract_units(path: str, text: str) -> tuple[list[CodeUnit], list[tuple[int, int]], bool]:
    """The units of one source file, the top-level line ranges that are no unit, and whether it had syntax errors.

    Raises ``ValueError`` for a file whose suffix has no grammar."""
    grammar_name = grammar_for(path)
    if grammar_name is None:
        raise ValueError(f"no grammar for {path}")
    source = text.encode("utf-8")
    tree = _parser(grammar_name).parse(source)
    extractor = _Extractor(GRAMMARS[grammar_name], source)
    extractor.visit(list(tree.root_node.children), (), extractor.leftovers)
    units = sorted(extractor.units, key=lambda u: (u.start_line, u.end_line))
    return units, extractor.leftovers, tree.root_node.has_error


def module_name(path: str) -> str:
    """A file's module as its heading paths name it: its path without the suffix (``src/auth/login``)."""
    name = path.rsplit(".", 1)[0] if "." in path.rsplit("/", 1)[-1] else path
    if name.endswith("/index") and "/" in name:
        name = name.removesuffix("/index")
    return name.removesuffix(".d") or path


def parse_code(path: str, text: str, source_type: str = "code") -> ParsedDocument:
    """A source file as sections of units (see the module docstring)."""
    units, leftovers, broken = extract_units(path, text)
    lines = text.splitlines()
    module = module_name(path)

    def source_lines(start: int, end: int) -> str:
        return "\n".join(lines[start - 1 : end])

    sections: list[Section] = []
    covered: set[int] = set()
    for unit in units:
        covered.update(range(unit.start_line, (unit.text_end_line or unit.end_line) + 1))
        heading = (module, *unit.scope, unit.signature or unit.name)
        if unit.kind in {"class", "impl", "trait"} or unit.members:
            end = unit.text_end_line or unit.end_line
            while end > unit.start_line and not lines[end - 1].strip():
                end -= 1
            summary = source_lines(unit.start_line, end).rstrip()
            if unit.members:
                summary += "\n    // members: " + "; ".join(unit.members)
            covered.update(range(unit.start_line, unit.end_line + 1))
            blocks = [Block(summary, unit.start_line, end, is_code=True)]
            blocks += [Block(source_lines(a, b), a, b, is_code=True) for a, b in unit.fields if source_lines(a, b).strip()]
            sections.append(Section(heading, blocks))
        else:
            sections.append(Section(heading, [Block(source_lines(unit.start_line, unit.end_line), unit.start_line,
                                                    unit.end_line, is_code=True)]))
    module_section = Section((module,))
    for start, end in sorted(leftovers):
        free = [n for n in range(start, end + 1) if n not in covered and n <= len(lines)]
        runs: list[list[int]] = []
        for n in free:
            if runs and runs[-1][-1] == n - 1:
                runs[-1].append(n)
            else:
                runs.append([n])
        for run in runs:
            body = source_lines(run[0], run[-1])
            if body.strip():
                module_section.blocks.append(Block(body, run[0], run[-1], is_code=True))
            covered.update(run)
    if module_section.blocks:
        sections.insert(0, module_section)
    return ParsedDocument(path, module, source_type, sections, partial=SYNTAX_ERRORS if broken else "")
