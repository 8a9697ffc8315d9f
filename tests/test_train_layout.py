"""The layout of the generated training code: the run machinery lives in one helper module,
harness.py, byte-identical for every spec; train.py holds what the spec decides and uses only
names harness.py defines; the template only places what the context builder decided."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
GENERATED = sorted(p for p in (REPO / "generated").iterdir() if (p / "train.py").is_file())
TEMPLATES = REPO / "templates"


def test_every_example_has_the_same_harness():
    """One harness.py for all: the same bytes in every generated/ folder."""
    assert len(GENERATED) >= 8
    texts = {folder.name: (folder / "harness.py").read_bytes() for folder in GENERATED}
    assert len(set(texts.values())) == 1, sorted(texts)


def test_harness_is_the_template_verbatim():
    """The helper's template has no placeholders or branches: nothing in it depends on a spec."""
    text = (TEMPLATES / "harness.py.j2").read_text(encoding="utf-8")
    assert "{{" not in text and "{%" not in text
    assert "specc" not in (GENERATED[0] / "harness.py").read_text().split('"""')[2]


@pytest.mark.parametrize("folder", GENERATED, ids=[f.name for f in GENERATED])
def test_harness_imports_nothing_of_the_spec(folder):
    """harness.py imports only the standard library, numpy and torch (never specc, data, model)."""
    tree = ast.parse((folder / "harness.py").read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            roots.add((node.module or "").split(".")[0])
    assert roots.isdisjoint({"specc", "data", "model", "train"}), roots


@pytest.mark.parametrize("folder", GENERATED, ids=[f.name for f in GENERATED])
def test_train_uses_only_what_harness_defines(folder):
    """Every `harness.X` in train.py is defined at the top level of harness.py, and train.py
    defines no module constant it never reads."""
    harness = ast.parse((folder / "harness.py").read_text(encoding="utf-8"))
    defined = {n.name for n in harness.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    defined |= {
        t.id
        for n in harness.body
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    train_text = (folder / "train.py").read_text(encoding="utf-8")
    train = ast.parse(train_text)
    used = {
        n.attr
        for n in ast.walk(train)
        if isinstance(n, ast.Attribute) and getattr(n.value, "id", None) == "harness"
    }
    assert used and used <= defined, used - defined
    constants = [
        t.id
        for n in train.body
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name) and t.id.isupper()
    ]
    for name in constants:
        assert len(re.findall(rf"\b{name}\b", train_text)) > 1, f"{folder.name}: {name} unused"


def test_train_template_branches_on_fields_only():
    """At most 25 if/elif branches in train.py.j2 (issue 9): decisions live in train_ctx.py."""
    text = (TEMPLATES / "train.py.j2").read_text(encoding="utf-8")
    branches = re.findall(r"{%-? *(?:if|elif)\b", text)
    assert len(branches) <= 25, len(branches)
    assert " and " not in "".join(re.findall(r"{%-? *(?:if|elif)[^%]*%}", text))


def test_no_test_hooks_in_generated_training_code():
    """Tests drive train.py from outside (signals, --epochs via --set), never through a flag."""
    for folder in GENERATED:
        text = (folder / "train.py").read_text() + (folder / "harness.py").read_text()
        assert "--stop-after" not in text and "SPECC_" not in text, folder.name
