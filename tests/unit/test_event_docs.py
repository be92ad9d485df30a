"""docs/events.md is the one page that says what every custody event kind means and carries;
courts, auditors and a bundle's verify.py read the events, so the page must not drift from
the code. Checked here: every kind in EVENT_KINDS has a section and every section is a kind;
the chain-of-custody report has words for exactly those kinds; the kinds the bundle's
standalone verify.py decides by exist, its manifest kinds are MANIFEST_KINDS; the details
fields each section lists are exactly the keyword names that bwc's `event(...)` calls of
that kind pass (found with `ast`); the example leaf is a real leaf with the hash shown."""

from __future__ import annotations

import ast
import functools
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bwc.evidence.bundle.report import EVENT_WORDS
from bwc.evidence.events import EVENT_KINDS, MANIFEST_KINDS, decode_leaf

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "events.md"
VERIFY_PY = ROOT / "bwc" / "evidence" / "bundle" / "verify.py"

_KIND_HEADING = re.compile(r"^### `([a-z-]+)`\s*$")
_FIELD_ROW = re.compile(r"^\| `([A-Za-z_][A-Za-z0-9_]*)` \|")


# ---------------------------------------------------------------------------- the page


def doc_sections(text: str) -> dict[str, list[str]]:
    """Each `### \\`kind\\`` section under "## Kinds": its lines (a kind twice is an error)."""
    kinds_at = text.index("\n## Kinds\n")
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text[kinds_at:].splitlines()[2:]:
        m = _KIND_HEADING.match(line)
        if m:
            assert m.group(1) not in out, f"docs/events.md: two sections for {m.group(1)}"
            current = out[m.group(1)] = []
        elif line.startswith("## ") or line.startswith("### "):
            current = None
        elif current is not None:
            current.append(line)
    return out


def doc_fields(lines: list[str]) -> set[str]:
    return {m.group(1) for line in lines if (m := _FIELD_ROW.match(line))}


@pytest.fixture(scope="module")
def sections() -> dict[str, list[str]]:
    return doc_sections(DOC.read_text("utf-8"))


def test_every_kind_has_a_section(sections: dict[str, list[str]]) -> None:
    missing = sorted(EVENT_KINDS - sections.keys())
    assert not missing, f"docs/events.md has no `### \\`kind\\`` section for {missing}"


def test_every_section_is_a_kind(sections: dict[str, list[str]]) -> None:
    unknown = sorted(sections.keys() - EVENT_KINDS)
    assert not unknown, f"docs/events.md documents kinds not in EVENT_KINDS: {unknown}"


def test_the_custody_report_has_words_for_exactly_the_kinds() -> None:
    # a kind without words is shown raw in a court's report; words for a kind that does
    # not exist are a sign of a rename the report missed
    assert set(EVENT_WORDS) == EVENT_KINDS


def test_the_bundle_verifier_decides_by_real_kinds_and_the_manifest_kinds() -> None:
    """verify.py is standalone (stdlib only), so it spells out the kinds it decides by:
    each must exist, and the ones whose manifest_sha256 it folds must be MANIFEST_KINDS."""
    tree = ast.parse(VERIFY_PY.read_text("utf-8"))
    named: set[str] = set()
    manifest_kinds: list[set[str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare) or not _mentions_kind(node):
            continue
        for side in (node.left, *node.comparators):
            consts = _str_consts(side)
            named |= consts
            if "ingested" in consts and len(consts) > 1:
                manifest_kinds.append(consts)
    assert named, "verify.py compares no kinds: this test no longer finds them"
    assert named <= EVENT_KINDS, sorted(named - EVENT_KINDS)
    assert manifest_kinds == [set(MANIFEST_KINDS)]


def _mentions_kind(node: ast.Compare) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id in ("kind", "kinds"):
            return True
        if isinstance(sub, ast.Constant) and sub.value == "kind":
            return True
    return False


def _str_consts(node: ast.expr) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value} if node.value != "kind" else set()
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return {
            e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
        }
    return set()


def test_the_example_leaf_is_a_leaf_with_the_hash_shown(sections: dict[str, list[str]]) -> None:
    text = DOC.read_text("utf-8")
    blocks = re.findall(r"```\n(.*?)\n```", text, flags=re.S)
    leaf = next(b for b in blocks if b.startswith('{"actor":')).encode("utf-8")
    shown = next(b for b in blocks if re.fullmatch(r"[0-9a-f]{64}", b))
    ev = decode_leaf(leaf)  # canonical, v 1, every field
    assert hashlib.sha256(b"\x00" + leaf).hexdigest() == shown
    assert ev.kind in EVENT_KINDS
    assert set(ev.details) <= doc_fields(sections[ev.kind])


# ---------------------------------------------------------------------------- the code


@dataclass
class Found:
    fields: dict[str, set[str]] = field(default_factory=dict)  # kind -> details keys
    problems: list[str] = field(default_factory=list)  # call sites this reading cannot follow
    # (module, function) -> (kinds, its own parameters): wrappers whose **kwargs reach details
    forwarders: dict[tuple[str, str], tuple[set[str], set[str]]] = field(default_factory=dict)

    def add(self, kinds: set[str], names: set[str]) -> None:
        for k in kinds:
            self.fields.setdefault(k, set()).update(names)


@dataclass(frozen=True)
class Module:
    name: str  # dotted: "bwc.evidence.cases"
    where: str  # path for messages
    tree: ast.Module
    parents: dict[ast.AST, ast.AST]
    consts: dict[str, str]  # module-level NAME = "text"
    modules: dict[str, str]  # from bwc.evidence import cases -> "cases": "bwc.evidence.cases"
    names: dict[str, tuple[str, str]]  # from bwc.x.y import NAME -> NAME: ("bwc.x.y", NAME)
    literals: dict[str, set[str]]  # module-level Name = Literal["a", "b"] (a type of kinds)


def _path(dotted: str) -> Path | None:
    base = ROOT.joinpath(*dotted.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


class Modules:
    """bwc's modules by dotted name, parsed when first needed (parsing all of bwc costs
    seconds; the event calls sit in a dozen files)."""

    def __init__(self) -> None:
        self._cache: dict[str, Module | None] = {}
        self.sources = {
            ".".join(p.relative_to(ROOT).with_suffix("").parts): p.read_text("utf-8")
            for p in sorted((ROOT / "bwc").rglob("*.py"))
            if "migrations" not in p.parts
        }

    def __getitem__(self, dotted: str) -> Module | None:
        if dotted not in self._cache:
            self._cache[dotted] = self._load(dotted)
        return self._cache[dotted]

    def _load(self, dotted: str) -> Module | None:
        path = _path(dotted)
        if path is None:
            return None
        tree = ast.parse(path.read_text("utf-8"))
        parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
        consts: dict[str, str] = {}
        literals: dict[str, set[str]] = {}
        modules: dict[str, str] = {}
        names: dict[str, tuple[str, str]] = {}
        for node in ast.walk(tree):  # imports inside functions too
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    if _path(full) is not None:
                        modules[a.asname or a.name] = full
                    else:
                        names[a.asname or a.name] = (node.module, a.name)
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            else:
                continue
            if (
                isinstance(target, ast.Name)
                and isinstance(value, ast.Constant)
                and isinstance(value.value, str)
            ):
                consts[target.id] = value.value
            elif isinstance(target, ast.Name) and (words := _literal(value)) is not None:
                literals[target.id] = words
        where = str(path.relative_to(ROOT))
        return Module(dotted, where, tree, parents, consts, modules, names, literals)

    def containing(self, *needles: str) -> list[Module]:
        out = []
        for dotted, text in self.sources.items():
            if any(n in text for n in needles):
                mod = self[dotted]
                if mod is not None:
                    out.append(mod)
        return out


@functools.cache
def _modules() -> Modules:
    return Modules()


def _function(mod: Module, node: ast.AST) -> ast.FunctionDef | None:
    while node in mod.parents:
        node = mod.parents[node]
        if isinstance(node, ast.FunctionDef):
            return node
    return None


def _params(fn: ast.FunctionDef | None) -> tuple[set[str], str | None]:
    if fn is None:
        return set(), None
    a = fn.args
    named = {x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)}
    return named, a.kwarg.arg if a.kwarg else None


def _assigned(fn: ast.FunctionDef | None, name: str) -> list[ast.expr]:
    if fn is None:
        return []
    out: list[ast.expr] = []
    for n in ast.walk(fn):
        if isinstance(n, ast.Assign):
            if any(isinstance(t, ast.Name) and t.id == name for t in n.targets):
                out.append(n.value)
        elif (
            isinstance(n, ast.AnnAssign)
            and n.value is not None
            and isinstance(n.target, ast.Name)
            and n.target.id == name
        ):
            out.append(n.value)
    return out


def _literal(e: ast.expr | None) -> set[str] | None:
    """The strings of ``Literal["a", "b"]`` (an annotation or a type alias's value)."""
    if not (isinstance(e, ast.Subscript) and isinstance(e.value, ast.Name)):
        return None
    if e.value.id != "Literal":
        return None
    items = e.slice.elts if isinstance(e.slice, ast.Tuple) else [e.slice]
    words = {x.value for x in items if isinstance(x, ast.Constant) and isinstance(x.value, str)}
    return words if len(words) == len(items) else None


def _param_kinds(
    mods: Modules, mod: Module, fn: ast.FunctionDef | None, name: str
) -> set[str] | None:
    """The kinds a parameter typed ``Literal[...]`` (or a module's alias of one) can be."""
    if fn is None:
        return None
    a = fn.args
    arg = next((x for x in (*a.posonlyargs, *a.args, *a.kwonlyargs) if x.arg == name), None)
    if arg is None:
        return None
    ann = arg.annotation
    if isinstance(ann, ast.Name):
        if ann.id in mod.literals:
            return mod.literals[ann.id]
        if ann.id in mod.names:
            src_name, alias = mod.names[ann.id]
            src = mods[src_name]
            return src.literals.get(alias) if src is not None else None
        return None
    return _literal(ann)


def _kinds(mods: Modules, mod: Module, e: ast.expr, fn: ast.FunctionDef | None) -> set[str] | None:
    """The kinds an expression can be: literals, IfExp, a local or a module's constant, a
    parameter typed as a Literal of kinds."""
    if isinstance(e, ast.Constant) and isinstance(e.value, str):
        return {e.value}
    if isinstance(e, ast.IfExp):
        a, b = _kinds(mods, mod, e.body, fn), _kinds(mods, mod, e.orelse, fn)
        return None if a is None or b is None else a | b
    if isinstance(e, ast.Name):
        local = _assigned(fn, e.id)
        if local:
            out: set[str] = set()
            for v in local:
                got = _kinds(mods, mod, v, fn)
                if got is None:
                    return None
                out |= got
            return out
        if e.id in _params(fn)[0]:
            return _param_kinds(mods, mod, fn, e.id)
        if e.id in mod.consts:
            return {mod.consts[e.id]}
        if e.id in mod.names:
            src_name, const = mod.names[e.id]
            src = mods[src_name]
            return {src.consts[const]} if src is not None and const in src.consts else None
        return None
    if isinstance(e, ast.Attribute) and isinstance(e.value, ast.Name):
        src = mods[mod.modules.get(e.value.id, "")]
        return {src.consts[e.attr]} if src is not None and e.attr in src.consts else None
    return None


def _dict_keys(
    mod: Module, e: ast.expr, fn: ast.FunctionDef | None
) -> tuple[set[str], bool] | None:
    """The keys a `**e` spread gives, and whether it forwards the function's **kwargs."""
    kwarg = _params(fn)[1]
    if isinstance(e, ast.Dict):
        lit = {k.value for k in e.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
        return (lit, False) if len(lit) == len(e.keys) else None
    if isinstance(e, ast.IfExp):
        a, b = _dict_keys(mod, e.body, fn), _dict_keys(mod, e.orelse, fn)
        return None if a is None or b is None else (a[0] | b[0], a[1] or b[1])
    if isinstance(e, ast.DictComp):  # {k: v for k, v in kwargs.items() ...}
        it = e.generators[0].iter
        ok = (
            isinstance(it, ast.Call)
            and isinstance(it.func, ast.Attribute)
            and isinstance(it.func.value, ast.Name)
            and it.func.value.id == kwarg
        )
        return (set(), True) if ok else None
    if isinstance(e, ast.Call) and isinstance(e.func, ast.Name):  # a helper returning a dict
        home, name = mod, e.func.id
        if name in mod.names:  # imported from another of bwc's modules
            other = _modules()[mod.names[name][0]]
            if other is None:
                return None
            home, name = other, mod.names[name][1]
        defs = [n for n in home.tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
        rets = [r.value for d in defs for r in ast.walk(d) if isinstance(r, ast.Return) and r.value]
        got = [_dict_keys(home, r, defs[0]) for r in rets]
        if not got or any(g is None for g in got):
            return None
        return set().union(*(g[0] for g in got if g)), False
    if isinstance(e, ast.Name):
        if e.id == kwarg:
            return set(), True
        values = _assigned(fn, e.id)
        if not values or fn is None:
            return None
        keys: set[str] = set()
        forwards = False
        for v in values:
            one = _dict_keys(mod, v, fn)
            if one is None:
                return None
            keys |= one[0]
            forwards = forwards or one[1]
        for n in ast.walk(fn):  # name["key"] = ..., name.update(**kwargs)
            if isinstance(n, ast.Assign):
                for t in n.targets:
                    if (
                        isinstance(t, ast.Subscript)
                        and isinstance(t.value, ast.Name)
                        and t.value.id == e.id
                    ):
                        if not (
                            isinstance(t.slice, ast.Constant) and isinstance(t.slice.value, str)
                        ):
                            return None
                        keys.add(t.slice.value)
            elif (
                isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and isinstance(n.func.value, ast.Name)
                and n.func.value.id == e.id
                and n.func.attr == "update"
            ):
                if not (
                    len(n.args) == 1 and isinstance(n.args[0], ast.Name) and n.args[0].id == kwarg
                ):
                    return None
                forwards = True
        return keys, forwards
    return None


def _event_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "event"
        and bool(node.args)
    )


def code_fields() -> Found:
    mods = Modules()
    found = Found()
    for mod in mods.containing(".event(", "NewEvent("):
        for node in ast.walk(mod.tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "NewEvent"
            ):
                fn = _function(mod, node)
                if fn is not None and fn.name == "event" and mod.name == "bwc.evidence.station":
                    continue  # Station.event itself: the kind is its caller's
                found.problems.append(f"{mod.where}:{node.lineno}: NewEvent(...) built directly")
                continue
            if not _event_call(node):
                continue
            assert isinstance(node, ast.Call)
            fn = _function(mod, node)
            where = f"{mod.where}:{node.lineno}"
            kinds = _kinds(mods, mod, node.args[0], fn)
            if kinds is None or not kinds <= EVENT_KINDS:
                found.problems.append(f"{where}: cannot tell the event's kind ({kinds})")
                continue
            names: set[str] = set()
            for kw in node.keywords:
                if kw.arg is not None:
                    names.add(kw.arg)
                    continue
                got = _dict_keys(mod, kw.value, fn)
                if got is None:
                    found.problems.append(
                        f"{where}: cannot tell the keys of **{ast.unparse(kw.value)}"
                    )
                    continue
                names |= got[0]
                if got[1] and fn is not None:
                    found.forwarders[(mod.name, fn.name)] = (kinds, _params(fn)[0])
            found.add(kinds, names)
    # calls of those wrappers: their keyword arguments beyond the wrapper's own parameters
    wrappers = {name for _, name in found.forwarders}
    for mod in mods.containing(*(f"{w}(" for w in wrappers)):
        for node in ast.walk(mod.tree):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
                key = (mod.modules.get(f.value.id, ""), f.attr)
            elif isinstance(f, ast.Name):
                key = mod.names.get(f.id, (mod.name, f.id))
            else:
                continue
            if key not in found.forwarders:
                continue
            kinds, own = found.forwarders[key]
            if any(kw.arg is None for kw in node.keywords):
                found.problems.append(f"{mod.where}:{node.lineno}: ** passed to {key[1]}")
            found.add(kinds, {kw.arg for kw in node.keywords if kw.arg is not None} - own)
    return found


def test_documented_details_fields_are_the_ones_the_code_passes(
    sections: dict[str, list[str]],
) -> None:
    found = code_fields()
    assert not found.problems, (
        "event(...) calls this test cannot read (pass details as keywords, a dict literal or "
        "a local dict built in the same function): " + "; ".join(found.problems)
    )
    assert found.fields, "no event(...) call found: this test no longer reads the code"
    wrong = []
    for kind in sorted(EVENT_KINDS):
        documented = doc_fields(sections.get(kind, []))
        passed = found.fields.get(kind, set())
        if documented - passed:
            wrong.append(f"{kind}: documented but never passed: {sorted(documented - passed)}")
        if passed - documented:
            wrong.append(f"{kind}: passed but not documented: {sorted(passed - documented)}")
    assert not wrong, "docs/events.md vs the code: " + "; ".join(wrong)
