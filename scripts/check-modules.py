#!/usr/bin/env python3
"""Checks the module structure of the workspace's Rust sources.

Every workspace crate (the `members` of the root Cargo.toml) is read: each of its targets (src/lib.rs,
src/main.rs, src/bin/*.rs, and the roots under tests/, benches/ and examples/) is one module tree,
followed through its `mod name;` declarations (name.rs or name/mod.rs; inline `mod name { ... }`
blocks belong to the file they are written in). The script fails, naming the files and lines, on:

1. An import cycle between modules. The granularity is the file: a node is one source file (a module
   declared by a file, with the inline modules written inside it), and there is an edge A -> B when A
   names an item of B through `use crate::...`, `use super::...`, `use self::...`, `use child::...`
   (a module A declares), or a `crate::x::y` / `super::x` / `self::x` / `child::x` path in code.
   `pub use` re-exports are followed to the file that defines the item, so `crate::Name` re-exported
   by lib.rs is an edge to the file of `Name`, not to lib.rs. Declaring a child (`mod child;`) is not
   an edge, but naming its items is: a module and its own child that import each other (the parent
   through the child's `super::`) form a cycle like any other two files.
2. An import from the storage or configuration modules (FORBIDDEN_IN_PROTOCOL: `db`, `config`) into
   the protocol modules of crates/shared (PROTOCOL_MODULES); and, for a protocol layer that is its own
   crate (one of PROTOCOL_CRATES), any dependency of that crate on `shared`.
3. A state or action literal in a Rust SQL string: a single-quoted lower_snake word, in a string
   literal passed to `sql_query(...)` or `sql(...)`/`sql::<T>(...)` (directly, or as a constant of the
   same file named in the call), that is one of the tenant or work
   states, work kinds or audit actions. The words are the string forms of the enums in
   crates/shared/src/db/models.rs (every `=> "word"` arm in the impls of STATE_ENUMS), together with the
   hand-kept KNOWN_WORDS below (the audit actions and work kinds written as strings today).

Usage: scripts/check-modules.py [ROOT]   (ROOT: the workspace root; default: this repository)
Exit status: 0 when nothing is found, 1 with one message per finding on stderr.
"""

from __future__ import annotations

import dataclasses
import glob
import pathlib
import re
import sys
import tomllib

# The modules of crates/shared that speak the SuperOffice protocol: they take settings structs, and
# import nothing from storage or configuration loading.
PROTOCOL_MODULES = ("crypto", "jwt", "superid", "tenant", "soap", "http", "environment")
# What the protocol modules must not import (crates/shared/src/db, crates/shared/src/config).
FORBIDDEN_IN_PROTOCOL = ("db", "config")
# Package names a protocol layer of its own would have; such a crate must not depend on `shared`.
PROTOCOL_CRATES = ("protocol", "superoffice-protocol")
# The crate whose modules the protocol rule applies to.
SHARED_CRATE = "crates/shared"
# Enums whose string forms are state, kind or action words (read from MODELS).
MODELS = "crates/shared/src/db/models.rs"
STATE_ENUMS = ("TenantState", "WorkState", "WorkKind", "AuditAction")
# Audit actions and work kinds that are strings in the code today (no enum to read them from yet),
# and the states, in case models.rs cannot be read.
KNOWN_WORDS = frozenset(
    {
        # tenant states
        "pending", "active", "suspended", "revoked", "expired", "denied", "needs_reapproval",
        "deleted", "disabled",
        # work states
        "queued", "running", "done", "failed",
        # work kinds
        "create_company",
        # audit actions
        "state_changed", "ticket_obtained", "work_queued", "operator_retry", "tenant_purged",
        "encryption_key_rotated", "sessions_ended",
    }
)


@dataclasses.dataclass
class Literal:
    start: int  # offset of the placeholder in the stripped code
    line: int
    text: str


@dataclasses.dataclass
class Source:
    path: pathlib.Path
    rel: str
    code: str  # comments removed, every string literal replaced by `""` (newlines kept)
    literals: list[Literal]

    def line_of(self, offset: int) -> int:
        return self.code.count("\n", 0, offset) + 1


def strip(text: str) -> tuple[str, list[Literal]]:
    """Removes comments and replaces string literals by `""`, keeping line breaks."""
    out: list[str] = []
    literals: list[Literal] = []
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            out.append(c)
            line += 1
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            breaks = text.count("\n", i, j)
            out.append("\n" * breaks)
            line += breaks
            i = j
        elif (m := re.compile(r'b?r(#*)"').match(text, i)) and (i == 0 or not _ident(text[i - 1])):
            close = '"' + m.group(1)
            j = text.find(close, m.end())
            j = n if j < 0 else j
            literals.append(Literal(len("".join(out)), line, text[m.end() : j]))
            breaks = text.count("\n", i, j)
            out.append('""' + "\n" * breaks)
            line += breaks
            i = j + len(close)
        elif c == '"' or (c == "b" and text.startswith('b"', i) and (i == 0 or not _ident(text[i - 1]))):
            j = i + (2 if c == "b" else 1)
            start = j
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            literals.append(Literal(len("".join(out)), line, text[start:j]))
            breaks = text.count("\n", i, j)
            out.append('""' + "\n" * breaks)
            line += breaks
            i = j + 1
        elif c == "'":
            # A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if text.startswith("\\", i + 1):
                j = text.find("'", i + 2)
                i = n if j < 0 else j + 1
                out.append("' '")
            elif i + 2 < n and text[i + 2] == "'":
                out.append("' '")
                i += 3
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out), literals


def _ident(c: str) -> bool:
    return c.isalnum() or c == "_"


def read_source(root: pathlib.Path, path: pathlib.Path) -> Source:
    code, literals = strip(path.read_text(encoding="utf-8"))
    return Source(path, path.relative_to(root).as_posix(), code, literals)


def matching(code: str, open_at: int, pair: str = "{}") -> int:
    """The offset just after the bracket closing the one at `open_at`."""
    depth = 0
    for j in range(open_at, len(code)):
        if code[j] == pair[0]:
            depth += 1
        elif code[j] == pair[1]:
            depth -= 1
            if depth == 0:
                return j + 1
    return len(code)


# ---------------------------------------------------------------------------------------------------
# Module trees


@dataclasses.dataclass
class Module:
    path: tuple[str, ...]  # from the crate root
    file: str  # the file it is written in
    inline: tuple[int, int] | None = None  # the span of an inline module in that file
    test: bool = False  # under #[cfg(test)]: its imports are not edges


@dataclasses.dataclass
class Tree:
    name: str
    modules: dict[tuple[str, ...], Module]
    files: dict[str, Source]
    file_module: dict[str, tuple[str, ...]]


MOD_DECL = re.compile(r"(?:^|[;{}\]\s])(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+(r#)?(\w+)\s*([;{])")
CFG_TEST = re.compile(r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*$")


def build_tree(root: pathlib.Path, name: str, root_file: pathlib.Path) -> Tree:
    tree = Tree(name, {}, {}, {})

    def visit(path: pathlib.Path, modpath: tuple[str, ...], is_dir_owner: bool, test: bool) -> None:
        source = read_source(root, path)
        if source.rel in tree.files:
            return
        tree.files[source.rel] = source
        tree.file_module[source.rel] = modpath
        tree.modules[modpath] = Module(modpath, source.rel, None, test)
        child_dir = path.parent if is_dir_owner else path.parent / path.stem
        walk(source, 0, len(source.code), modpath, child_dir, test)

    def walk(
        source: Source, start: int, end: int, modpath: tuple[str, ...], child_dir: pathlib.Path, test: bool
    ) -> None:
        pos = start
        while True:
            m = MOD_DECL.search(source.code, pos, end)
            if not m:
                return
            name = m.group(2)
            is_test = test or bool(CFG_TEST.search(source.code, max(0, m.start() - 200), m.start() + 1))
            if m.group(3) == ";":
                for candidate, owner in ((child_dir / f"{name}.rs", False), (child_dir / name / "mod.rs", True)):
                    if candidate.is_file():
                        visit(candidate, modpath + (name,), owner, is_test)
                        break
                pos = m.end()
            else:
                open_at = m.end() - 1
                close = matching(source.code, open_at)
                inner = modpath + (name,)
                tree.modules[inner] = Module(inner, source.rel, (open_at, close), is_test)
                walk(source, open_at + 1, close - 1, inner, child_dir / name, is_test)
                pos = close

    visit(root_file, (), True, False)
    return tree


def crate_trees(root: pathlib.Path) -> list[tuple[pathlib.Path, Tree]]:
    manifest = tomllib.loads((root / "Cargo.toml").read_text(encoding="utf-8"))
    workspace = manifest.get("workspace", {})
    excluded = {(root / e).resolve() for e in workspace.get("exclude", [])}
    crates: list[pathlib.Path] = []
    for member in workspace.get("members", []):
        for found in sorted(glob.glob(str(root / member))):
            path = pathlib.Path(found)
            if (path / "Cargo.toml").is_file() and path.resolve() not in excluded:
                crates.append(path)
    if (root / "src").is_dir() and "package" in manifest:
        crates.append(root)
    trees = []
    for crate in crates:
        roots = [crate / "src" / "lib.rs", crate / "src" / "main.rs"]
        roots += sorted((crate / "src" / "bin").glob("*.rs"))
        for kind in ("tests", "benches", "examples"):
            roots += sorted((crate / kind).glob("*.rs")) + sorted((crate / kind).glob("*/main.rs"))
        for file in roots:
            if file.is_file():
                trees.append((crate, build_tree(root, file.relative_to(root).as_posix(), file)))
    return trees


# ---------------------------------------------------------------------------------------------------
# Imports


USE = re.compile(r"(?:^|[;{}\]\s])((?:pub(?:\s*\([^)]*\))?\s+)?)use\s+([^;]+);")
PATH_IN_CODE = re.compile(r"(?<![\w:])(crate|super|self)((?:\s*::\s*\w+)+)")


def split_top(s: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for c in s:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if c == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    parts.append("".join(cur))
    return parts


def use_paths(tree_text: str) -> list[tuple[list[str], str]]:
    """Like expand_use, on a use tree with `as` aliases kept apart from the names."""
    marked = re.sub(r"\s+as\s+", "@", tree_text.strip())
    marked = re.sub(r"\s+", "", marked).lstrip(":")
    results: list[tuple[list[str], str]] = []

    def parse(prefix: list[str], s: str) -> None:
        brace = s.find("{")
        if brace >= 0:
            head = s[:brace].rstrip(":")
            inner = s[brace + 1 : matching(s, brace) - 1]
            base = prefix + [p for p in head.split("::") if p]
            for part in split_top(inner):
                if part:
                    parse(base, part)
            return
        alias = None
        if "@" in s:
            s, alias = s.split("@", 1)
        full = prefix + [p for p in s.split("::") if p]
        if full and full[-1] == "self":
            full = full[:-1]
        if full:
            results.append((full, alias or full[-1]))

    parse([], marked)
    return results


@dataclasses.dataclass
class Edge:
    source: str
    target: str
    line: int
    path: str


class Resolver:
    def __init__(self, tree: Tree):
        self.tree = tree
        # Per file: the names its `pub use` statements bind, with the module they were written in.
        self.reexports: dict[str, dict[str, tuple[tuple[str, ...], list[str]]]] = {}
        for rel, source in tree.files.items():
            exports: dict[str, tuple[tuple[str, ...], list[str]]] = {}
            for m in USE.finditer(source.code):
                if not m.group(1).strip():
                    continue
                scope = self.scope_at(rel, m.start(2))
                for path, bound in use_paths(m.group(2)):
                    if bound != "*" and path:
                        exports[bound] = (scope, path)
            self.reexports[rel] = exports

    def scope_at(self, rel: str, offset: int) -> tuple[str, ...]:
        """The module path at an offset of a file (inside the innermost inline module there)."""
        return self.module_at(rel, offset).path

    def module_at(self, rel: str, offset: int) -> Module:
        best = self.tree.modules[self.tree.file_module[rel]]
        for module in self.tree.modules.values():
            if module.file == rel and module.inline and module.inline[0] <= offset < module.inline[1]:
                if len(module.path) > len(best.path):
                    best = module
        return best

    def absolute(self, scope: tuple[str, ...], path: list[str]) -> tuple[str, ...] | None:
        if not path:
            return None
        head, rest = path[0], path[1:]
        if head == "crate":
            return tuple(rest)
        if head in ("super", "self"):
            current = list(scope)
            while path and path[0] in ("super", "self"):
                if path[0] == "super":
                    if not current:
                        return None
                    current.pop()
                path = path[1:]
            return tuple(current + path)
        if scope + (head,) in self.tree.modules:
            return scope + tuple(path)
        return None

    def target(self, absolute: tuple[str, ...], depth: int = 0) -> tuple[str, tuple[str, ...]] | None:
        """The file defining what an absolute path names, following re-exports."""
        for cut in range(len(absolute), -1, -1):
            module = self.tree.modules.get(absolute[:cut])
            if module is None:
                continue
            rest = absolute[cut:]
            if rest and depth < 8:
                exported = self.reexports.get(module.file, {}).get(rest[0])
                if exported:
                    scope, path = exported
                    inner = self.absolute(scope, path)
                    if inner is not None:
                        found = self.target(inner + tuple(rest[1:]), depth + 1)
                        if found:
                            return found
            return module.file, module.path
        return None

    def edges(self) -> list[Edge]:
        edges: list[Edge] = []
        for rel, source in self.tree.files.items():
            seen: set[tuple[str, int]] = set()

            def add(path: list[str], offset: int) -> None:
                module = self.module_at(rel, offset)
                if module.test:
                    return
                scope = module.path
                absolute = self.absolute(scope, path)
                if absolute is None:
                    return
                found = self.target(absolute)
                if found is None or found[0] == rel:
                    return
                line = source.line_of(offset)
                if (found[0], line) in seen:
                    return
                seen.add((found[0], line))
                edges.append(Edge(rel, found[0], line, "::".join(path)))

            uses = list(USE.finditer(source.code))
            for m in uses:
                if m.group(1).strip():
                    continue  # a re-export: followed where it is used, not an import of its own
                for path, _ in use_paths(m.group(2)):
                    add(path, m.start(2))
            reexport_spans = [(m.start(), m.end()) for m in uses if m.group(1).strip()]
            for m in PATH_IN_CODE.finditer(source.code):
                if any(a <= m.start() < b for a, b in reexport_spans):
                    continue
                segments = [m.group(1)] + [s for s in re.split(r"\s*::\s*", m.group(2)) if s]
                add(segments, m.start())
            children = {
                module.path[-1]
                for module in self.tree.modules.values()
                if len(module.path) == len(self.tree.file_module[rel]) + 1
                and module.path[:-1] == self.tree.file_module[rel]
            }
            for child in children:
                for m in re.finditer(rf"(?<![\w:])(?<!mod )({child})((?:\s*::\s*\w+)+)", source.code):
                    if any(a <= m.start() < b for a, b in reexport_spans):
                        continue
                    segments = [child] + [s for s in re.split(r"\s*::\s*", m.group(2)) if s]
                    add(segments, m.start())
        return edges


# ---------------------------------------------------------------------------------------------------
# Checks


def cycles(edges: list[Edge]) -> list[list[str]]:
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
        graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = [0]

    def connect(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            connect(v)
    return sorted(components)


def state_words(root: pathlib.Path) -> set[str]:
    words = set(KNOWN_WORDS)
    models = root / MODELS
    if not models.is_file():
        return words
    code = models.read_text(encoding="utf-8")
    for enum in STATE_ENUMS:
        for m in re.finditer(rf"\bimpl\b[^{{;]*\b{enum}\b[^{{;]*\{{", code):
            body = code[m.end() - 1 : matching(code, m.end() - 1)]
            words.update(re.findall(r'=>\s*"([a-z][a-z0-9_]*)"', body))
            words.update(re.findall(r'"([a-z][a-z0-9_]*)"\s*=>', body))
    return words


SQL_CALL = re.compile(r"(?<![\w])(sql_query|sql)\s*(::\s*<)?")


def sql_literals(source: Source, words: set[str]) -> list[str]:
    findings = []
    for m in SQL_CALL.finditer(source.code):
        at = m.end()
        if m.group(2):
            at = matching(source.code, at - 1, "<>")
        while at < len(source.code) and source.code[at].isspace():
            at += 1
        if at >= len(source.code) or source.code[at] != "(":
            continue
        close = matching(source.code, at, "()")
        # The call's own literals, and those of the constants it names (`const SQL: &str = "...";`).
        spans = [(at, close)]
        for name in set(re.findall(r"\b[A-Z][A-Z0-9_]+\b", source.code[at:close])):
            for const in re.finditer(rf"\b(?:const|static)\s+{name}\s*:[^=]*=", source.code):
                spans.append((const.end(), source.code.find(";", const.end())))
        for literal in source.literals:
            if any(start <= literal.start < end for start, end in spans):
                for word in re.findall(r"'([a-z][a-z0-9_]*)'", literal.text):
                    if word in words:
                        line = literal.line + literal.text.count("\n", 0, literal.text.find(f"'{word}'"))
                        findings.append(
                            f"{source.rel}:{line}: state or action literal '{word}' in a SQL string "
                            f"passed to {m.group(1)}(); bind it as a parameter"
                        )
    return findings


def check(root: pathlib.Path) -> list[str]:
    findings: list[str] = []
    trees = crate_trees(root)
    words = state_words(root)
    checked_files: set[str] = set()
    for crate, tree in trees:
        resolver = Resolver(tree)
        edges = resolver.edges()
        for component in cycles(edges):
            members = set(component)
            lines = [
                f"  {e.source}:{e.line} uses {e.path} ({e.target})"
                for e in sorted(edges, key=lambda e: (e.source, e.line))
                if e.source in members and e.target in members
            ]
            findings.append(
                f"import cycle between {len(component)} files ({tree.name}): "
                + ", ".join(component)
                + "\n"
                + "\n".join(lines)
            )
        if crate.resolve() == (root / SHARED_CRATE).resolve():
            for e in edges:
                source_module = tree.file_module[e.source]
                target_module = tree.file_module[e.target]
                if (
                    source_module[:1]
                    and source_module[0] in PROTOCOL_MODULES
                    and target_module[:1]
                    and target_module[0] in FORBIDDEN_IN_PROTOCOL
                ):
                    findings.append(
                        f"{e.source}:{e.line}: protocol module `{source_module[0]}` imports from "
                        f"`{target_module[0]}` ({e.path}, in {e.target})"
                    )
        for rel, source in tree.files.items():
            if rel not in checked_files:
                checked_files.add(rel)
                findings.extend(sql_literals(source, words))
    for crate, _ in {c: None for c, _ in trees}.items():
        manifest = tomllib.loads((crate / "Cargo.toml").read_text(encoding="utf-8"))
        if manifest.get("package", {}).get("name") in PROTOCOL_CRATES:
            for section in ("dependencies", "build-dependencies"):
                if "shared" in manifest.get(section, {}):
                    findings.append(
                        f"{(crate / 'Cargo.toml').relative_to(root).as_posix()}: the protocol crate "
                        f"depends on `shared` in [{section}]"
                    )
    # Findings in the same file can come from two targets; say each once.
    return list(dict.fromkeys(findings))


def main(argv: list[str]) -> int:
    root = pathlib.Path(argv[1]).resolve() if len(argv) > 1 else pathlib.Path(__file__).resolve().parent.parent
    findings = check(root)
    for finding in findings:
        print(f"check-modules: {finding}", file=sys.stderr)
    if findings:
        print(f"check-modules: {len(findings)} finding(s)", file=sys.stderr)
        return 1
    print("check-modules: no import cycles, protocol modules free of db/config, no state literals in SQL")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
