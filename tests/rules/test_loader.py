"""The fast (libyaml) parse of a rules file is the pure-Python round-trip parse, positions too.

`parse_yaml` reads with libyaml's C parser and falls back to ruamel's pure-Python parser for
anything the C one refuses, so every check of the rules layer (typing, duplicate keys,
`file:line:column`) rests on the two agreeing: same data, same positions on every node, and
the C parser refusing whatever the reference refuses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flows.rules import loader
from flows.rules.loader import RulesError

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(
    [*REPO_ROOT.glob("rules/*.yaml"), *REPO_ROOT.glob("tests/rules/invalid*/*.yaml")],
    key=str,
)

# YAML 1.1 and 1.2 differ on these; the rules layer promises 1.2 (docs/rules.md)
SNIPPETS = {
    "norway_and_switches": "country: NO\nflag: on\nanswer: yes\nother: off\n",
    "booleans": "a: true\nb: false\nc: True\n",
    "numbers": "octal: 0o14\nold_octal: 014\nsexagesimal: 1:20\nunderscored: 1_000\n",
    "specials": "inf: .inf\nnan: .nan\nnull_tilde: ~\nempty:\n",
    "dates_stay_text": "due: 2026-02-30\nat: 2026-01-01T10:00:00Z\n",
    "flow_and_quotes": 'rules: {"all": [{"user_field": "city", "values": ["a\'b", "c;--"]}]}\n',
    "anchors": "base: &b {x: 1}\ncopy: *b\n",
    "block_scalars": "text: |\n  line one\n  line two\nfolded: >\n  a\n  b\n",
    "unicode": 'name: Zoë Ångström\nemoji: "\\u00e9"\n',
}

# YAML 1.2 reads these; libyaml (a YAML 1.1 scanner) refuses them, so they take the slow path
FALLBACK = {
    "colon_in_flow_plain_scalar": "- {user_field: custom:region, values: [UK & Ireland]}\n",
    "flow_key_with_colon": "{a:1}\n",
    "line_separator_in_plain_scalar": "name: a\u2028b\n",
    "next_line_in_plain_scalar": "name: a\x85b\n",
}

REFUSED = {
    "duplicate_key": "a: 1\na: 2\n",
    "bad_indent": "a:\n  - 1\n - 2\n",
    "unclosed_flow": "a: [1, 2\n",
    "tab_indent": "a:\n\tb: 1\n",
    "two_documents": "a: 1\n---\nb: 2\n",
}


def _positions(tree: Any, at: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], Any]:
    """Every node's recorded position (ruamel's `lc`), by path.

    One known difference is left out: an empty value (`key:` and nothing) is placed by
    libyaml right after its colon and by the pure parser at the next token, possibly lines
    further; both name the key, whose position is compared.
    """
    found: dict[tuple[Any, ...], Any] = {}
    if isinstance(tree, dict | list):
        data = dict(tree.lc.data or {})
        if isinstance(tree, dict):
            data = {k: v[:2] if tree[k] is None else v for k, v in data.items()}
        found[at] = (tree.lc.line, tree.lc.col, data)
        children = tree.items() if isinstance(tree, dict) else enumerate(tree)
        for key, child in children:
            found.update(_positions(child, (*at, key)))
    return found


def _pure(path: Path) -> Any:
    return loader._parse_pure(path, path.read_text(encoding="utf-8"))


def _assert_same(path: Path) -> bool:
    """parse_yaml gives the reference tree; returns whether libyaml read the file."""
    reference = _pure(path)
    tree = loader.parse_yaml(path)
    assert tree == reference
    assert _positions(tree) == _positions(reference)
    parsed, fast = loader._parse_fast(path.read_text(encoding="utf-8"))
    if parsed:
        assert fast == reference
        assert _positions(fast) == _positions(reference)
    return parsed


pytestmark = pytest.mark.skipif(loader.CParser is None, reason="ruamel.yaml.clib is not installed")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_shipped_rules_files_parse_the_same(path: Path) -> None:
    try:
        _pure(path)
    except RulesError:
        assert not loader._parse_fast(path.read_text(encoding="utf-8"))[0]
        return
    _assert_same(path)


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_yaml_1_2_typing_is_the_same(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(SNIPPETS[name], encoding="utf-8")
    assert _assert_same(path), "libyaml should read this one (the fast path)"


@pytest.mark.parametrize("name", sorted(FALLBACK))
def test_yaml_1_2_only_syntax_falls_back_to_the_reference(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(FALLBACK[name], encoding="utf-8")
    assert not _assert_same(path)


def test_text_stays_text(tmp_path: Path) -> None:
    path = tmp_path / "typing.yaml"
    path.write_text(SNIPPETS["norway_and_switches"] + SNIPPETS["dates_stay_text"])
    tree = loader.parse_yaml(path)
    assert tree == {
        "country": "NO",
        "flag": "on",
        "answer": "yes",
        "other": "off",
        "due": "2026-02-30",
        "at": "2026-01-01T10:00:00Z",
    }


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_what_the_reference_refuses_libyaml_refuses(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(REFUSED[name], encoding="utf-8")
    assert not loader._parse_fast(REFUSED[name])[0]
    with pytest.raises(RulesError) as caught:
        loader.parse_yaml(path)
    with pytest.raises(RulesError) as reference:
        _pure(path)
    assert str(caught.value) == str(reference.value)
    assert str(caught.value).startswith(f"{path}:")
