"""rules/audiences.yaml: schema, meaning, references, the committed JSON Schema, CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flows.rules.audiences import NODE_KINDS, AllNode, UserFieldRule, iter_nodes
from flows.rules.loader import RulesError
from flows.rules.schema import RULES_DIR, SCHEMAS, schema_text
from flows.rules.validation import check_references, validate_rules

INVALID = Path(__file__).parent / "invalid"
EXPECT = "# expect: "

EVERY_LEAF = """\
audiences:
  - id: pilot
    name: Pilot
    kind: static
    members: [U0000001]
  - id: from_file
    name: From a file
    kind: static
    members_file: pilot.csv
  - id: every_leaf
    name: Every leaf kind
    kind: dynamic
    active_from: 2026-01-01
    active_until: "2026-12-31"
    add_members: true
    remove_members: false
    rules:
      all:
        - {user_field: city, operator: equals, values: [Leeds]}
        - {user_field: "custom:region", operator: is_empty}
        - {date_field: last_access, operator: before, date: 2026-01-01}
        - {date_field: custom:hiredate, operator: older_than_days, days: 0}
        - organisation: {ids: [ORG00001], include_children: true, negate: true}
        - position: {ids: [POS0001]}
        - organisation_type: {operator: in, values: [division]}
        - position_type: {operator: not_in, values: [role]}
        - {organisation_custom_field: costcentre, operator: starts_with, values: [CC]}
        - {position_custom_field: grade, operator: ends_with, values: ["5"]}
        - job_title: {operator: not_contains, values: [Intern]}
        - {has_direct_reports: false}
        - reports_to: {managers: [U0000001], direct_only: false}
        - course_completion: {ids: [C0001], match: any, completed_before: 2026-06-01}
        - program_completion: {ids: [prog_induction], match: none, within_last_days: 30}
        - certification_state: {certification: cert_safety, states: [certified, window_open]}
        - any:
            - member_of: {audiences: [pilot]}
            - not: {not_member_of: {audiences: [from_file]}}
"""


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "audiences.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "pilot.csv").write_text("useridnumber\nU0000001\n", encoding="utf-8")
    (tmp_path / "hr_import.yaml").write_text(HR_IMPORT_WITH_HIREDATE, encoding="utf-8")
    (tmp_path / "programs.yaml").write_text(PROGRAMS_OF_EVERY_LEAF, encoding="utf-8")
    (tmp_path / "certifications.yaml").write_text(CERTIFICATIONS_OF_EVERY_LEAF, encoding="utf-8")
    return tmp_path


HR_IMPORT_WITH_HIREDATE = "elements:\n  user:\n    custom_fields:\n      hiredate: {type: date}\n"
# the program and certification EVERY_LEAF names (program ids resolve against these files)
PROGRAMS_OF_EVERY_LEAF = (
    "programs:\n  - {id: prog_induction, name: Induction, content: [{kind: optional}]}\n"
)
CERTIFICATIONS_OF_EVERY_LEAF = (
    "certifications:\n  - {id: cert_safety, name: Safety, primary: [{kind: optional}],\n"
    "     active_period: {years: 1}, window_period: {months: 1}}\n"
)


def test_members_file_rows_become_static_members_and_references(tmp_path: Path) -> None:
    _write(tmp_path, EVERY_LEAF)
    (tmp_path / "pilot.csv").write_text(
        "useridnumber,note\nU0000007,first\n\nU0000009,after a blank line\n", encoding="utf-8"
    )
    loaded = validate_rules(tmp_path)
    assert loaded.static_members["from_file"] == ("U0000007", "U0000009")
    [missing] = check_references(loaded, {"user": {"U0000001", "U0000007"}})
    assert str(missing).endswith(
        "pilot.csv:4:1: [from_file] unknown user 'U0000009'; did you mean 'U0000007'?"
    )


def test_members_file_without_its_column_names_what_it_found(tmp_path: Path) -> None:
    _write(tmp_path, EVERY_LEAF)
    (tmp_path / "pilot.csv").write_text("idnumber\nU0000001\n", encoding="utf-8")
    with pytest.raises(RulesError) as err:
        validate_rules(tmp_path)
    assert [str(issue).removeprefix(f"{tmp_path}/") for issue in err.value.issues] == [
        "pilot.csv:1:1: [from_file] a members file needs a 'useridnumber' column (found: idnumber)"
    ]


def test_custom_date_rule_needs_the_field_declared_as_a_date(tmp_path: Path) -> None:
    _write(tmp_path, EVERY_LEAF)
    (tmp_path / "hr_import.yaml").write_text(
        "elements:\n  user:\n    custom_fields:\n      hiredate: {type: text}\n", encoding="utf-8"
    )
    with pytest.raises(RulesError) as err:
        validate_rules(tmp_path)
    assert [str(issue).removeprefix(f"{tmp_path}/") for issue in err.value.issues] == [
        "audiences.yaml:22:24: [every_leaf] date_field 'custom:hiredate': declare it in "
        "hr_import.yaml under elements.user.custom_fields.hiredate with type: date"
    ]


@pytest.mark.parametrize("fixture", sorted(INVALID.glob("*.yaml")), ids=lambda p: p.stem)
def test_invalid_file_gives_every_expected_message(fixture: Path, tmp_path: Path) -> None:
    expected = [
        line.removeprefix(EXPECT)
        for line in fixture.read_text(encoding="utf-8").splitlines()
        if line.startswith(EXPECT)
    ]
    shutil.copy(fixture, tmp_path / "audiences.yaml")
    with pytest.raises(RulesError) as err:
        validate_rules(tmp_path)
    assert [str(issue).removeprefix(f"{tmp_path}/") for issue in err.value.issues] == expected


def test_every_leaf_kind_parses(tmp_path: Path) -> None:
    loaded = validate_rules(_write(tmp_path, EVERY_LEAF))
    rules = loaded.audiences.audiences[2].rules
    assert isinstance(rules, AllNode)
    kinds = {type(node) for node in iter_nodes(rules)}
    assert kinds == set(NODE_KINDS.values())
    assert loaded.audiences.audiences[2].active_until.isoformat() == "2026-12-31"


def test_yes_no_on_stay_text_in_values(tmp_path: Path) -> None:
    text = (
        "audiences:\n  - id: a\n    name: A\n    kind: dynamic\n"
        "    rules: {user_field: custom:optin, operator: in, values: [NO, on, yes, off]}\n"
    )
    rule = validate_rules(_write(tmp_path, text)).audiences.audiences[0].rules
    assert isinstance(rule, UserFieldRule)
    assert rule.values == ["NO", "on", "yes", "off"]


def test_sql_looking_values_load_as_plain_data(tmp_path: Path) -> None:
    nasty = ["O'Brien", 'say "hi"', "x'; drop table users; --", "-- comment", "a;b"]
    values = ", ".join('"' + v.replace('"', '\\"') + '"' for v in nasty)
    text = (
        "audiences:\n  - id: a\n    name: A\n    kind: dynamic\n"
        f"    rules: {{user_field: lastname, operator: in, values: [{values}]}}\n"
    )
    rule = validate_rules(_write(tmp_path, text)).audiences.audiences[0].rules
    assert isinstance(rule, UserFieldRule)
    assert rule.values == nasty


def test_check_references_suggests_the_closest_id(tmp_path: Path) -> None:
    loaded = validate_rules(_write(tmp_path, EVERY_LEAF))
    known = {
        "organisation": {"ORG00002"},
        "position": {"POS0001"},
        "user": {"U0000001"},
        "course": {"C0002"},
    }
    issues = [str(i).removeprefix(f"{tmp_path}/") for i in check_references(loaded, known)]
    assert issues == [
        "audiences.yaml:23:32: [every_leaf] unknown organisation 'ORG00001'; "
        "did you mean 'ORG00002'?",
        "audiences.yaml:32:37: [every_leaf] unknown course 'C0001'; did you mean 'C0002'?",
    ]


def test_missing_rules_files_mean_no_audiences(tmp_path: Path) -> None:
    loaded = validate_rules(tmp_path)
    assert loaded.audiences.audiences == []
    assert loaded.hr_import.element("user").mode == "full"


def test_errors_of_several_files_are_reported_together(tmp_path: Path) -> None:
    (tmp_path / "hr_import.yaml").write_text("defaults:\n  mode: ful\n")
    (tmp_path / "audiences.yaml").write_text("audiences:\n  - id: a\n    nme: A\n")
    with pytest.raises(RulesError) as err:
        validate_rules(tmp_path)
    files = {Path(issue.file).name for issue in err.value.issues}
    assert files == {"hr_import.yaml", "audiences.yaml"}


def test_the_demo_rules_are_valid() -> None:
    loaded = validate_rules(RULES_DIR)
    assert len(loaded.audiences.audiences) >= 10


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_committed_schema_is_up_to_date(name: str) -> None:
    committed = (RULES_DIR / name).read_text(encoding="utf-8")
    assert committed == schema_text(name), "run: .venv/bin/python -m flows.rules.schema"
