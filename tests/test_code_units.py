"""Source code in other languages: tree-sitter units (kind, qualified name, signature, doc comment, exact
lines), config files as whole small documents, generated and minified files skipped and counted."""

import shutil
from pathlib import Path

import pytest

from engine.ingest.chunking import chunk_document
from engine.ingest.code_units import SYNTAX_ERRORS, extract_units, parse_code
from engine.ingest.config_files import MAX_CONFIG_BYTES, TOO_LARGE, parse_config_file
from engine.ingest.document import NotRead
from engine.ingest.links import LinkBuilder
from engine.ingest.reader import SourceReader
from engine.ingest.sources import GENERATED, generated_by_path, generated_by_text, parser_for
from tests.conftest import words

CODE = Path(__file__).parent / "data" / "code_units"


def read(name: str) -> str:
    return (CODE / name).read_text(encoding="utf-8")


def units(name: str) -> dict:
    found, _, broken = extract_units(name, read(name))
    assert not broken, f"{name} should parse cleanly"
    by_name: dict = {}
    for unit in found:  # Rust's ``struct Circle`` and ``impl Shape for Circle`` share a name: the first stays
        by_name.setdefault(unit.name, unit)
    return by_name


def lines_of(name: str, start: int, end: int) -> str:
    return "\n".join(read(name).splitlines()[start - 1 : end])


def test_typescript_class_method_function_interface_and_arrow_function():
    found = units("session.ts")
    assert [(u.kind, n) for n, u in found.items()] == [
        ("interface", "Closable"), ("class", "SessionManager"), ("method", "SessionManager.constructor"),
        ("method", "SessionManager.refreshToken"), ("method", "SessionManager.close"),
        ("function", "hashPassword"), ("function", "formatExpiry"), ("type", "SessionId"),
        ("class", "LoginCounter"), ("method", "LoginCounter.count"),
    ]
    method = found["SessionManager.refreshToken"]
    assert method.signature == "async refreshToken(sessionId: string, ttl: number = DEFAULT_TTL): Promise<string>"
    assert method.doc == "Renews the session token before it expires."
    assert (method.start_line, method.end_line) == (22, 26)  # the doc comment's line through the closing brace
    cls = found["SessionManager"]
    assert cls.signature == "class SessionManager implements Closable"
    assert cls.doc == "Keeps a user's login session alive.\n\nSessions expire after `ttl` seconds."
    assert (cls.start_line, cls.end_line) == (10, 31)  # the doc above ``export`` belongs to the class
    assert "async close(): Promise<void>" in cls.members
    function = found["hashPassword"]
    assert function.signature == "function hashPassword(password: string, salt: string): string"
    assert (function.start_line, function.end_line, function.doc) == (33, 36, "Hashes a password with a per-user salt.")
    assert found["formatExpiry"].signature == "const formatExpiry = (seconds: number): string =>"
    assert (found["Closable"].start_line, found["Closable"].end_line) == (5, 8)
    assert found["SessionManager.close"].doc == ""
    (long_type,) = extract_units("t.ts", "type Options = {\n  ttl: number\n}\n")[0]
    assert (long_type.signature, long_type.start_line, long_type.end_line) == ("type Options", 1, 3)


def test_typescript_document_mirrors_python_units():
    doc = parse_code("src/auth/session.ts", read("session.ts"))
    assert (doc.title, doc.source_type, doc.partial) == ("src/auth/session", "code", "")
    by_path = {s.heading_path: s.blocks for s in doc.sections}
    method = by_path[("src/auth/session", "SessionManager",
                      "async refreshToken(sessionId: string, ttl: number = DEFAULT_TTL): Promise<string>")][0]
    assert method.text == lines_of("session.ts", 22, 26) and (method.start_line, method.end_line) == (22, 26)
    summary = by_path[("src/auth/session", "class SessionManager implements Closable")][0]
    assert (summary.start_line, summary.end_line) == (10, 16)  # up to its first member, blank lines trimmed
    assert "private store: Store" in summary.text and "// members: constructor(store: Store)" in summary.text
    counter = by_path[("src/auth/session", "class LoginCounter")]  # fields after a method stay with their class
    assert [(b.start_line, b.end_line) for b in counter] == [(42, 43), (48, 48), (49, 49)]
    assert counter[2].text == "  reset = (): void => { this.failures = 0 }"
    module = by_path[("src/auth/session",)]  # top-level statements, less the imports
    assert [b.text for b in module] == ["export const DEFAULT_TTL = 3600"] and module[0].start_line == 3
    for section in doc.sections:  # every block's lines are the file's own
        for block in section.blocks:
            assert lines_of("session.ts", block.start_line, block.end_line) in block.text


def test_tsx_and_javascript():
    tsx = units("Button.tsx")
    assert tsx["ButtonProps"].kind == "interface" and tsx["ButtonProps"].doc == "Props of {@link Button}."
    assert tsx["Button"].signature == "function Button({ label, onClick }: ButtonProps)"
    assert (tsx["Button"].start_line, tsx["Button"].end_line) == (9, 12)
    js = units("widget.js")
    assert js["Widget"].kind == "class" and js["Widget"].doc == "Renders a widget into a container."
    assert (js["Widget.show"].signature, js["Widget.show"].doc) == ("show()", "Shows the widget.")
    assert (js["Widget.show"].start_line, js["Widget.show"].end_line) == (3, 6)
    assert js["debounce"].signature == "const debounce = (fn, wait) =>"
    assert (js["debounce"].start_line, js["debounce"].end_line) == (9, 13)


def test_go_methods_are_named_by_their_receiver_and_docs_are_the_comment_lines_above():
    found = units("cache.go")
    assert [(u.kind, n) for n, u in found.items()] == [
        ("interface", "Store"), ("struct", "LRU"), ("method", "LRU.Get"), ("function", "NewLRU")]
    assert found["LRU"].doc == "LRU is a least-recently-used cache.\nIt is safe for concurrent use."
    assert (found["LRU"].signature, found["LRU"].start_line, found["LRU"].end_line) == ("type LRU struct", 11, 16)
    assert found["Store"].signature == "type Store interface"
    get = found["LRU.Get"]
    assert get.signature == "func (c *LRU) Get(key string) (string, bool)"
    assert (get.start_line, get.end_line) == (18, 24)
    assert get.doc == "Get returns the value for key and whether it was present."


def test_rust_traits_impls_structs_and_attributes():
    found = units("shapes.rs")
    assert found["Shape"].kind == "trait" and found["Shape.area"].doc == "The shape's area."
    circle = found["Circle"]
    assert (circle.kind, circle.signature, circle.doc) == ("struct", "pub struct Circle", "A circle by its radius.")
    assert (circle.start_line, circle.end_line) == (9, 13)  # doc comment and #[derive] included
    assert found["Circle.area"].doc == "Pi times the radius squared."
    assert (found["Circle.area"].start_line, found["Circle.area"].end_line) == (16, 19)
    assert found["Circle"].kind == "struct" and [u.kind for u in extract_units("shapes.rs", read("shapes.rs"))[0]
                                                 if u.name == "Circle"] == ["struct", "impl"]
    total = found["total_area"]
    assert total.signature == "pub fn total_area(shapes: &[Box<dyn Shape>]) -> f64"
    assert (total.start_line, total.end_line, total.doc) == (22, 25, "Sums the areas of many shapes.")


def test_java_classes_methods_and_interfaces():
    found = units("Greeter.java")
    greet = found["Greeter.greet"]
    assert greet.kind == "method" and greet.signature == "@Deprecated public String greet(String name)"
    assert greet.doc == "Builds the greeting for one person.\n@param name who to greet"
    assert (greet.start_line, greet.end_line) == (15, 22)
    assert (found["Greeter"].start_line, found["Greeter"].end_line, found["Greeter"].doc) == (5, 23, "Greets people by name.")
    assert found["Hello"].kind == "interface" and found["Hello.hello"].signature == "String hello()"


def test_c_and_cpp_functions_prototypes_structs_and_namespaces():
    header = units("buffer.h")
    assert (header["buffer"].kind, header["buffer"].doc) == ("struct", "A growable byte buffer.")
    assert header["buffer_append"].signature == "int buffer_append(struct buffer *b, const char *bytes, size_t n)"
    c = units("buffer.c")
    free = c["buffer_free"]
    assert (free.start_line, free.end_line) == (4, 9)
    assert free.doc == "Frees the buffer's memory.\nThe buffer may be used again afterwards."
    cpp = units("vec.cpp")
    assert cpp["geo.Point"].kind == "class" and cpp["geo.Point"].doc == "A point in the plane."
    assert (cpp["geo.Point.norm"].signature, cpp["geo.Point.norm"].doc) == ("double norm() const", "Distance from the origin.")
    assert (cpp["geo.add"].start_line, cpp["geo.add"].end_line) == (13, 16)
    assert [s.heading_path for s in parse_code("vec.cpp", read("vec.cpp")).sections] == [
        ("vec", "geo", "class Point"), ("vec", "geo", "Point", "double norm() const"),
        ("vec", "geo", "Point add(const Point &a, const Point &b)")]


def test_what_a_namespace_holds_besides_units_stays_in_the_module_section():
    doc = parse_code("a.cpp", "namespace geo {\nconst int LIMIT = 3;\n/** f */\nint f() { return LIMIT; }\n}\n")
    assert [(s.heading_path, [(b.start_line, b.end_line) for b in s.blocks]) for s in doc.sections] == [
        (("a",), [(2, 2)]), (("a", "geo", "int f()"), [(3, 4)])]


def test_a_syntax_error_keeps_what_parses_and_says_so():
    units_found, _, broken = extract_units("broken.ts", read("broken.ts"))
    assert broken
    by_name = {u.name: u for u in units_found}
    assert (by_name["add"].start_line, by_name["add"].end_line, by_name["add"].doc) == (1, 4, "Adds two numbers.")
    assert (by_name["subtract"].start_line, by_name["subtract"].end_line) == (10, 13)
    assert by_name["subtract"].doc == "Subtracts b from a."
    assert parse_code("broken.ts", read("broken.ts")).partial == SYNTAX_ERRORS


@pytest.mark.parametrize("text", ["", "\n\n", "}}}{{{", "export default", "/** only a comment */", "\0\0garbage"])
def test_odd_sources_never_crash(text):
    doc = parse_code("odd.ts", text)
    assert doc.path == "odd.ts"


@pytest.mark.parametrize(("path", "text"), [
    ("deep.cpp", "void top() {}\n" + "namespace a {" * 3000 + "void f() {}" + "}" * 3000),
    ("deep.rs", "fn top() {}\n" + "mod a {" * 3000 + "fn f() {}" + "}" * 3000),
    ("deep.ts", "/** Top. */\nfunction top() {}\n" + "namespace a {" * 3000 + "}" * 3000),
    ("Deep.java", "class A {" * 3000 + "}" * 3000),
])
def test_deeply_nested_scopes_stop_at_a_depth_instead_of_exhausting_the_stack(path, text):
    found, _, _ = extract_units(path, text)
    assert found  # what is not nested too deep is still read
    assert max(len(u.scope) for u in found) <= 64


def test_a_huge_function_is_cut_by_lines_like_python_units():
    body = "\n".join(f"  total += values[{i}] * weights[{i}]" for i in range(400))
    text = f"/** Sums the weighted values. */\nexport function weighted(values: number[], weights: number[]) {{\n  let total = 0\n{body}\n  return total\n}}\n"
    chunks = chunk_document(parse_code("w.ts", text), words, 128, LinkBuilder("https://github.com/o/r", "main"))
    assert len(chunks) > 5
    assert chunks[0].start_line == 1 and chunks[-1].end_line == 405
    assert all(c.heading_path == ("w", "function weighted(values: number[], weights: number[])") for c in chunks)
    lines = text.splitlines()
    for chunk in chunks:
        assert chunk.text == "\n".join(lines[chunk.start_line - 1 : chunk.end_line]).strip()  # as Python units
        assert chunk.url.endswith(f"#L{chunk.start_line}-L{chunk.end_line}")


@pytest.mark.parametrize(("path", "expected"), [
    ("src/a.ts", "code"), ("src/a.tsx", "code"), ("lib/a.js", "code"), ("a.mjs", "code"), ("cmd/main.go", "code"),
    ("src/lib.rs", "code"), ("A.java", "code"), ("a.c", "code"), ("a.h", "code"), ("a.cpp", "code"),
    ("examples/demo.ts", "example"), ("package.json", "config"), ("pyproject.toml", "config"),
    ("Dockerfile", "config"), ("docker/Dockerfile.dev", "config"), (".env.example", "config"),
    (".github/workflows/ci.yml", "config"), ("compose.yaml", "config"),
])
def test_parser_choice_for_code_and_config(path, expected):
    parser = parser_for(path)
    assert parser is not None and parser(path, "x\n").source_type == expected


@pytest.mark.parametrize("path", [".env", "data.json", "config.yml", "tsconfig.tsbuildinfo", "a.yaml"])
def test_secrets_and_other_data_files_are_not_read(path):
    assert parser_for(path) is None


def test_config_files_are_whole_small_documents_with_a_size_cap():
    text = '\n{\n  "name": "demo",\n  "scripts": {\n    "test": "vitest run"\n  }\n}\n'
    doc = parse_config_file("package.json", text)
    (block,) = [b for s in doc.sections for b in s.blocks]
    assert (doc.title, block.start_line, block.end_line, block.is_code) == ("package.json", 2, 7, True)
    assert '"test": "vitest run"' in block.text
    with pytest.raises(NotRead, match=TOO_LARGE):
        parse_config_file("package.json", "{" + " " * MAX_CONFIG_BYTES + "}")


def test_generated_and_minified_files_are_recognised():
    assert generated_by_path("node_modules/react/index.js") and generated_by_path("packages/ui/dist/index.js")
    assert generated_by_path("vendor/github.com/x/y.go") and generated_by_path("target/debug/build.rs")
    assert generated_by_path("static/app.min.js") and not generated_by_path("src/distance.ts")
    assert generated_by_text("app.min.js", read("app.min.js")) and generated_by_text("bundle.js", read("bundle.js"))
    assert generated_by_text("api.pb.go", "// Code generated by protoc-gen-go. DO NOT EDIT.\npackage api\n")
    assert not generated_by_text("session.ts", read("session.ts"))
    assert not generated_by_text("docs/long.md", "word " * 5000)  # prose may keep a paragraph on one line


def test_the_reader_skips_and_counts_generated_files_and_syntax_errors(tmp_path):
    root = tmp_path / "project"
    shutil.copytree(CODE, root)
    (root / "node_modules" / "left-pad").mkdir(parents=True)
    (root / "node_modules" / "left-pad" / "index.js").write_text("module.exports = 1\n")
    (root / "dist").mkdir()
    (root / "dist" / "session.js").write_text("exports.a = 1\n")
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / ".github" / "workflows" / "ci.yml").write_text("on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n")
    (root / ".env.example").write_text("API_KEY=\n")
    (root / ".env").write_text("API_KEY=secret\n")
    (root / "package-lock.json").write_text("{}\n")
    scripts = ",\n".join(f'    "task{i}": "node scripts/task{i}.js --all"' for i in range(MAX_CONFIG_BYTES // 40))
    (root / "package.json").write_text('{\n  "scripts": {\n' + scripts + "\n  }\n}\n")
    reader = SourceReader(root, words, 128)
    files = {f.path: f for f in reader.files()}
    assert ".github/workflows/ci.yml" in files and ".env.example" in files and ".env" not in files
    assert not any(p.startswith(("node_modules/", "dist/")) for p in files)
    assert "app.min.js" not in files and "bundle.js" not in files
    for file in files.values():
        reader.chunks(file)
    assert reader.skipped[GENERATED] == 4  # two folders, a *.min.js and a bundle with very long lines
    assert reader.skipped[SYNTAX_ERRORS] == 1  # broken.ts: read all the same
    assert reader.skipped[TOO_LARGE] == 1  # package.json
    assert reader.unreadable == []


def test_a_typescript_function_is_retrieved_and_cited_at_its_exact_lines(settings, embedder, tmp_path):
    from engine.service import Engine

    root = tmp_path / "project"
    (root / "src" / "auth").mkdir(parents=True)
    shutil.copy(CODE / "session.ts", root / "src" / "auth" / "session.ts")
    shutil.copy(CODE / "cache.go", root / "src" / "cache.go")
    shutil.copy(CODE / "widget.js", root / "src" / "widget.js")
    shutil.copy(CODE / "app.min.js", root / "src" / "app.min.js")
    (root / "package.json").write_text('{\n  "name": "demo",\n  "scripts": {\n    "test": "vitest run"\n  }\n}\n')
    engine = Engine(settings)
    engine.__dict__["embedder"] = embedder
    report = engine.ingest(root, repo_url="https://github.com/org/demo", ref="v1")
    assert sorted(report.added) == ["package.json", "src/auth/session.ts", "src/cache.go", "src/widget.js"]
    assert report.skipped == {GENERATED: 1}
    hits = engine.search("how do I renew a session token before it expires?", k=3)
    top = hits[0].chunk
    assert (top.path, top.start_line, top.end_line) == ("src/auth/session.ts", 22, 26)
    assert top.heading_path[-2:] == (
        "SessionManager", "async refreshToken(sessionId: string, ttl: number = DEFAULT_TTL): Promise<string>")
    assert top.url == "https://github.com/org/demo/blob/v1/src/auth/session.ts#L22-L26"
    assert "Renews the session token" in top.text
    scripts = engine.search("which command runs the tests? npm scripts vitest", k=3)
    assert any(h.chunk.path == "package.json" and h.chunk.source_type == "config" for h in scripts)
