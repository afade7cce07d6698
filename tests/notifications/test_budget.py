"""The mass-send guard, the per-user daily cap, the manager digest, real SMTP from a run and
run alerts, on the organisation of test_outbox.py (two runs each: the go-live baseline R1,
then R2, where U3 and U7 join program p1 and U7 the audience).

R1 is the same for every test, so it is built once for the module (``go_live``) and each
test starts from its own copy of that directory (``base``: the warehouse, its state
directory with the delivery ledger, the dbt state and the archive, R1's feeds and rules and
the templates), then runs only its R2 and what follows. The tests' settings (the guard, the
cap, the digest; SMTP) are R2's: on the go-live baseline every message is ``suppressed``
before the digest, the cap or the guard look at it (notification_outbox.sql), R1 mails
nobody, and R2 loads its own rules in place of R1's. The copy is sound because nothing has
a warehouse file open when it is taken (a run closes every connection, dbt's included) and
no path inside the state is absolute (the archive's are relative to it).
"""

from __future__ import annotations

import datetime as dt
import email
import shutil
from email import policy
from pathlib import Path
from typing import Any

import pytest

from flows.hr_import.importer import RemovalGuardError
from flows.notify.stage import notify, send_pending
from flows.pipeline import RunRequest, RunResult, parse_as_of, run_pipeline
from flows.summary import summary_lines
from flows.warehouse import warehouse_paths
from tests.notify.smtp_server import FaultyHandler, running_server

from .test_outbox import Run, key, outbox, run_once, write_templates

R1 = Run("R1", "2026-03-01T06:00:00Z", learners=("U1", "U2"))
R2 = Run("R2", "2026-03-10T06:00:00Z", learners=("U1", "U2", "U3", "U7"))


@pytest.fixture(scope="module")
def go_live(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """R1, the go-live baseline, built once: the directory every test copies."""
    directory = tmp_path_factory.mktemp("budget_go_live")
    write_templates(directory / "templates")
    run_once(directory, directory / "warehouse.duckdb", R1, 0)
    # Every DuckDB file (the warehouse, the delivery ledger) was closed and checkpointed:
    # a copy of the files is the whole state.
    assert not list(directory.rglob("*.wal"))
    return directory


@pytest.fixture
def base(go_live: Path, tmp_path: Path) -> Path:
    """This test's own copy of the go-live directory, in its tmp_path."""
    shutil.copytree(go_live, tmp_path, dirs_exist_ok=True)
    return tmp_path


def second_run(base: Path, *, extra_settings: str = "", **request: Any) -> tuple[Path, RunResult]:
    """R2 on the copy of the go-live warehouse in `base`."""
    warehouse = base / "warehouse.duckdb"
    return warehouse, run_once(base, warehouse, R2, 1, extra_settings=extra_settings, **request)


def created_by(warehouse: Path, result: RunResult) -> dict[tuple[str, ...], dict[str, Any]]:
    return {key(r): r for r in outbox(warehouse) if r["created_run_id"] == result.run_id}


def eml_files(warehouse: Path) -> set[str]:
    return {p.name for p in (warehouse.parent / f"{warehouse.name}.learnops/outbox").glob("*")}


# ------------------------------------------------------------------ the mass-send guard


def test_a_run_above_max_per_run_holds_everything_until_released(base: Path) -> None:
    warehouse, result = second_run(base, extra_settings="  max_per_run: 3\n")
    created = created_by(warehouse, result)
    late = {k for k, r in created.items() if k[0] == "overdue"}  # p2's, skipped_late
    assert {created[k]["status"] for k in late} == {"skipped_late"}
    # U3 and M1, M2 (U3's managers); U7 and M1; U7's join: 6 messages > 3
    held = {k: r for k, r in created.items() if k not in late}
    assert len(held) == 6
    assert {row["status"] for row in held.values()} == {"held"}
    assert eml_files(warehouse) == set()
    assert any("held by the mass-send guard" in line for line in summary_lines(result))

    paths, templates = warehouse_paths(warehouse), base / "templates"
    assert notify(paths, templates_dir=templates).delivery.sent == 0  # type: ignore[union-attr]
    released = notify(paths, release_run_id=result.run_id, templates_dir=templates)
    assert released.released == 6
    assert released.delivery is not None and released.delivery.sent == 6
    after = created_by(warehouse, result)
    assert {after[k]["status"] for k in held} == {"sent"}
    assert len(eml_files(warehouse)) == 6
    again = notify(paths, release=True, templates_dir=templates)
    assert (again.released, again.delivery.sent) == (0, 0)  # type: ignore[union-attr]


# ------------------------------------------------------------------ the daily cap, the digest


def test_the_daily_cap_defers_to_the_next_local_day_and_never_drops(base: Path) -> None:
    warehouse, result = second_run(
        base,
        extra_settings="  per_user_daily_cap: 1\n",
        site_timezone="Europe/Berlin",
        send=False,
    )
    created = created_by(warehouse, result)
    u7 = {r["status"]: r["not_before"] for k, r in created.items() if k[3] == "U7"}
    # U7's assignment and join: one goes today, the other from midnight on 11 March (Berlin)
    assert u7 == {"pending": None, "deferred": dt.datetime(2026, 3, 10, 23, 0, tzinfo=dt.UTC)}
    # M1 gets copies about U3 and U7: one today, one tomorrow
    m1 = sorted(r["status"] for k, r in created.items() if k[3] == "M1" and k[0] == "assigned")
    assert m1 == ["deferred", "pending"]

    paths, templates = warehouse_paths(warehouse), base / "templates"
    before = send_pending(
        paths, templates_dir=templates, now=lambda: dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
    )
    to_send = [k for k, r in created.items() if r["status"] in ("pending", "deferred")]
    assert before is not None and before.sent == len(to_send) - 2
    after = send_pending(
        paths, templates_dir=templates, now=lambda: dt.datetime(2026, 3, 10, 23, 5, tzinfo=dt.UTC)
    )
    assert after is not None and after.sent == 2
    assert {created_by(warehouse, result)[k]["status"] for k in to_send} == {"sent"}


def test_the_manager_digest_folds_a_managers_copies_into_one_mail(base: Path) -> None:
    warehouse, result = second_run(base, extra_settings="  manager_digest: true\n")
    created = created_by(warehouse, result)
    m1 = [r for k, r in created.items() if k[3] == "M1"]
    digests = [r for r in m1 if r["event_type"] == "digest"]
    assert len(digests) == 1 and digests[0]["status"] == "sent"
    folded = [r for r in m1 if r["status"] == "digested"]
    assert sorted(r["user_id"] for r in folded) == ["U3", "U7"]
    assert sorted(
        r["event_type"] for r in m1 if r["status"] not in ("digested", "skipped_late")
    ) == ["digest"]
    assert {r["digest_message_id"] for r in folded} == {digests[0]["message_id"]}
    # M2 has one copy only: nothing to fold
    assert created[("assigned", "U3", "p1", "M2")]["status"] == "sent"
    path = warehouse.parent / f"{warehouse.name}.learnops/outbox/{digests[0]['message_id']}.eml"
    assert path.exists()


# ------------------------------------------------------------------ real SMTP, alerts


def test_a_run_sends_its_mail_over_smtp(base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    handler = FaultyHandler()
    with running_server(handler) as port:
        for name, value in {"HOST": "127.0.0.1", "PORT": str(port), "SECURITY": "none"}.items():
            monkeypatch.setenv(f"LEARNOPS_SMTP_{name}", value)
        warehouse, result = second_run(base)
    sent = {
        r["message_id"] for r in created_by(warehouse, result).values() if r["status"] == "sent"
    }
    assert result.delivery is not None and result.delivery.mode == "smtp"
    assert len(sent) == result.delivery.sent > 0
    received = {
        email.message_from_bytes(m.content, policy=policy.default)["Message-ID"]
        for m in handler.received
    }
    assert received == {f"<{message_id}@learnops>" for message_id in sent}
    assert eml_files(warehouse) == set()


def test_a_failed_run_mails_the_data_team_once(base: Path) -> None:
    warehouse, _ = second_run(base)
    feeds = base / "feeds_emptied"
    shutil.copytree(base / "feeds1", feeds)
    (feeds / "user.csv").write_text("idnumber,username,firstname,lastname\n")  # removes all
    request = RunRequest(
        feeds=feeds,
        rules=base / "rules1",
        warehouse=warehouse,
        as_of=parse_as_of("2026-03-11T06:00:00Z", "UTC"),
        templates_dir=base / "templates",
    )
    for _ in range(2):  # the same failure twice: one alert per failed run
        with pytest.raises(RemovalGuardError):
            run_pipeline(request)
    alerts = sorted(p for p in eml_files(warehouse) if p.startswith("alert-"))
    assert len(alerts) == 2
    message = email.message_from_bytes(
        (warehouse.parent / f"{warehouse.name}.learnops/outbox/{alerts[0]}").read_bytes(),
        policy=policy.default,
    )
    assert message["To"].addresses[0].addr_spec == "data-team@example.com"
    assert "failed" in message["Subject"]
    assert "removal guard" in message.get_body(("plain",)).get_content().lower()


# ------------------------------------------------------------------ the shared go-live


def test_the_shared_go_live_sent_nothing(go_live: Path) -> None:
    """What every test above starts from; last in the module, so it also shows that no test
    wrote into the shared directory instead of its own copy."""
    warehouse = go_live / "warehouse.duckdb"
    rows = outbox(warehouse)
    assert rows, "the baseline must record what it saw"
    assert {row["status"] for row in rows} == {"suppressed"}
    assert {row["created_run_id"] for row in rows} == {rows[0]["created_run_id"]}  # R1's only
    assert ("assigned", "U1", "p1", "M1") in {key(row) for row in rows}
    assert eml_files(warehouse) == set()
