"""The loader's fast path (built from libyaml's events) gives exactly what the careful path gives, or steps aside.

Every plan file first goes through ``_load_tree``; whatever it does not
accept (``None``) is loaded by ``_load_careful``, which alone reports errors.
So the fast path must never accept a file and give other data or other marks
than the careful path, and must step aside for everything it does not handle.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
import yaml

from planrun import loader
from planrun.errors import PlanError
from planrun.loader import load_yaml_text

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not loader._WITH_LIBYAML, reason="the fast path needs libyaml")


def same(text: str) -> loader.YamlDoc:
    fast = loader._load_tree(text, "p.plan.yaml")
    careful = loader._load_careful(text, "p.plan.yaml")
    assert fast is not None, "the fast path stepped aside"
    assert fast.data == careful.data
    assert _types(fast.data) == _types(careful.data)
    assert fast.value_marks == careful.value_marks
    assert fast.key_marks == careful.key_marks
    return fast


def _types(value: object) -> object:
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value).__name__


TREES = [
    "plan: P\ntasks: []\n",
    "plan: P\ntasks:\n  - id: a\n    name: A\n    criteria:\n      - file_exists: a.txt\n",
    # every scalar style
    "a: plain\nb: 'single ''q'''\nc: \"double \\t \\u00e9\"\nd: |\n  lit\n  eral\ne: >\n  fol\n  ded\nf: |-\n  x\n",
    # the YAML 1.1 types a plain scalar can have
    "i: 12\nh: 0x1f\no: 017\nf: 1.5\ne: 1e3\ninf: .inf\nnan_: -.Inf\nsexa: 1:20\nb1: yes\nb2: Off\nn1: ~\nn2: null\n"
    "n3:\nd: 2024-01-31\nts: 2024-01-31 10:00:00\nq: '12'\n",
    # flow collections, nested, empty
    "a: [1, [2, [3, {x: y}]], {}]\nb: {k: [], m: {n: o}}\nc: []\n",
    # keys that are not strings
    "1: one\n2.5: two\nfalse_: t\nnull: n\n2024-01-01: d\n",
    # lists of mappings, indentless lists, comments, document markers
    "---\n# a comment\nx:\n- a: 1  # trailing\n  b: 2\n- c: 3\n...\n",
    # unicode, CRLF line endings, tabs inside values
    "name: \u00e9t\u00e9 \u2603\r\nlist:\r\n  - \"x\\ty\"\r\n  - 'z'\r\n",
    # long lines and deep (but allowed) nesting
    "a: " + "x" * 5000 + "\n" + "b:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 40)) + "  " * 40 + "v: 1\n",
    "'quoted key': 1\n\"dq key\": 2\n? complex plain key\n: 3\n",
]


@pytest.mark.parametrize("text", TREES, ids=range(len(TREES)))
def test_a_plain_tree_loads_as_the_careful_path_loads_it(text: str) -> None:
    same(text)


def _shipped_yaml() -> list[tuple[str, str]]:
    """The YAML files and the YAML blocks of the docs this repository ships."""
    found = [
        (str(p), p.read_text(encoding="utf-8"))
        for p in ROOT.rglob("*.y*ml")
        if not {".venv", "_generated", ".git"} & set(p.parts)
    ]
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        blocks = re.findall(r"```ya?ml\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)
        found += [(f"{doc.name} block {i}", block) for i, block in enumerate(blocks)]
    return found


def test_every_yaml_file_and_doc_block_in_the_repository_loads_alike() -> None:
    """The plans, hooks file and docs' examples: accepted by the fast path alike, or left to the careful one."""
    shipped = _shipped_yaml()
    assert len(shipped) >= 10
    accepted = 0
    for name, text in shipped:
        try:
            careful = loader._load_careful(text, "f")
        except (PlanError, yaml.YAMLError):
            assert loader._load_tree(text, "f") is None, name
            continue
        fast = loader._load_tree(text, "f")
        if fast is None:
            continue
        accepted += 1
        assert (fast.data, fast.value_marks, fast.key_marks) == (careful.data, careful.value_marks, careful.key_marks)
    assert accepted >= 8


def _random_value(rng: random.Random, depth: int) -> object:
    roll = rng.random()
    if depth > 4 or roll < 0.45:
        return rng.choice(
            [
                rng.randint(-(10**6), 10**6),
                rng.random() * 1000,
                rng.choice([True, False, None]),
                rng.choice(["plain", "with: colon", "yes", "0x10", "1e5", "", " lead", "é", "a\nb", "#x", "- y"]),
                "".join(rng.choice("ab c:#'\"-\\\t") for _ in range(rng.randint(0, 12))),
            ]
        )
    if roll < 0.7:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {f"k{i}{rng.choice(['', ' x', '.y'])}": _random_value(rng, depth + 1) for i in range(rng.randint(0, 4))}


@pytest.mark.parametrize("seed", range(40))
def test_random_documents_dumped_in_every_style_load_alike(seed: int) -> None:
    rng = random.Random(seed)
    data = {f"top{i}": _random_value(rng, 0) for i in range(rng.randint(1, 6))}
    for style in (False, True, None):
        for width in (20, 80):
            text = yaml.safe_dump(data, default_flow_style=style, width=width, allow_unicode=rng.random() < 0.5)
            doc = same(text)
            assert doc.data == data


STEPS_ASIDE = {
    "an anchor and an alias": "a: &x 1\nb: *x\n",
    "an anchored collection": "a: &x [1]\nb: 2\n",
    "a merge": "base: &b {x: 1}\nc:\n  <<: *b\n  y: 2\n",
    "a merge without an alias": "c:\n  <<: {x: 1}\n",
    "an explicit tag": "a: !!str 12\n",
    "a local tag": "a: !thing x\n",
    "a tagged collection": "a: !!set {x}\n",
    "a duplicate key": "a: 1\na: 2\n",
    "a duplicate nested key": "t:\n  - x: 1\n    x: 2\n",
    "a collection as a key": "? [a, b]\n: 1\n",
    "a control character": 'a: "bell\\a"\n',
    "a control character in a key": '"k\\x01": 1\n',
    "a second document": "a: 1\n---\nb: 2\n",
    "a list at the top": "- a\n- b\n",
    "a scalar at the top": "just text\n",
    "an empty file": "",
    "a value tag": "a: =\n",
    "a bad date": "a: 2024-13-45\n",
    "invalid YAML": "a: [1, 2\n",
    "too deep": "a: " + "[" * 70 + "]" * 70 + "\n",
}


@pytest.mark.parametrize("name", STEPS_ASIDE)
def test_what_the_fast_path_does_not_handle_goes_to_the_careful_path(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = STEPS_ASIDE[name]
    assert loader._load_tree(text, "p.plan.yaml") is None
    got = _outcome(text)
    monkeypatch.setattr(loader, "_load_tree", lambda text, display: None)  # the careful path alone
    assert got == _outcome(text)


def _outcome(text: str) -> object:
    try:
        return load_yaml_text(text, "p.plan.yaml").data
    except PlanError as exc:
        return str(exc)


def test_too_many_nodes_steps_aside_and_is_refused_located() -> None:
    text = "a:\n" + "".join(f"  - {i}\n" for i in range(loader.MAX_NODES + 5))
    assert loader._load_tree(text, "p.plan.yaml") is None
    with pytest.raises(PlanError, match=f"more than {loader.MAX_NODES} nodes"):
        load_yaml_text(text, "p.plan.yaml", max_bytes=1 << 24)


def test_the_fast_path_lists_the_numbers_it_met() -> None:
    doc = same("a: 1\nb: [x, 2.5, yes, ~]\nc: {d: 2024-01-01, e: '3'}\n")
    assert doc.numbers is not None
    assert [(loc, v) for loc, v in doc.numbers if not hasattr(v, "year")] == [(("a",), 1), (("b", 1), 2.5)]


@pytest.mark.parametrize(
    ("value", "message"),
    [("1.0e+400", "is not a finite number"), (".nan", "is not a finite number"), ("123456789012", "is out of range")],
)
def test_a_number_out_of_range_is_still_refused_at_its_line(planrunner, value: str, message: str) -> None:
    planrunner.makeplan(
        "p", f"plan: P\ntasks:\n  - id: a\n    name: A\n    criteria:\n      - {{command: 'true', timeout: {value}}}\n"
    )
    result = planrunner.run("--co")
    assert result.ret == 2
    result.stdout.fnmatch_lines([f"*p.plan.yaml:6:*{message}*"])
