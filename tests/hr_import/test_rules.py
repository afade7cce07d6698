"""rules/hr_import.yaml: defaults, per-element overrides, line-numbered errors (§3.2, §4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.hr_import.config import load_hr_import_rules
from flows.rules.loader import RulesError


def write_rules(tmp_path: Path, text: str) -> Path:
    (tmp_path / "hr_import.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def test_missing_file_gives_the_defaults(tmp_path: Path) -> None:
    user = load_hr_import_rules(tmp_path).element("user")

    assert (user.file, user.mode, user.on_remove, user.empty_fields) == (
        "user.csv",
        "full",
        "suspend",
        "keep",
    )
    assert user.max_removed_fraction == 0.10


def test_element_settings_override_defaults(tmp_path: Path) -> None:
    rules = load_hr_import_rules(
        write_rules(
            tmp_path,
            "defaults:\n  mode: delta\n  empty_fields: erase\nelements:\n  user:\n    mode: full\n",
        )
    )

    assert (rules.element("user").mode, rules.element("user").empty_fields) == ("full", "erase")
    assert rules.element("org").mode == "delta"


def test_misspelt_key_names_file_line_column_and_suggests_the_key(tmp_path: Path) -> None:
    path = write_rules(tmp_path, "elements:\n  user:\n    on_remvoe: keep\n") / "hr_import.yaml"

    with pytest.raises(RulesError) as err:
        load_hr_import_rules(tmp_path)

    assert str(err.value) == f"{path}:3:5: unknown key 'on_remvoe'; did you mean 'on_remove'?"


def test_on_remove_yes_is_refused_with_the_quoted_value(tmp_path: Path) -> None:
    path = write_rules(tmp_path, "elements:\n  user:\n    on_remove: yes\n") / "hr_import.yaml"

    with pytest.raises(RulesError) as err:
        load_hr_import_rules(tmp_path)

    message = str(err.value)
    assert message.startswith(f"{path}:3:16: elements.user.on_remove: ")
    assert "'keep', 'suspend' or 'delete'" in message
    assert message.endswith("(got 'yes')")


def test_unknown_element_is_refused(tmp_path: Path) -> None:
    write_rules(tmp_path, "elements:\n  users:\n    mode: full\n")

    with pytest.raises(RulesError, match=r"hr_import.yaml:2:3: .*unknown element\(s\) \['users'\]"):
        load_hr_import_rules(tmp_path)


def test_two_character_delimiter_is_refused(tmp_path: Path) -> None:
    write_rules(tmp_path, 'elements:\n  org:\n    csv: {delimiter: ";;"}\n')

    with pytest.raises(RulesError, match="must be exactly one character"):
        load_hr_import_rules(tmp_path)
