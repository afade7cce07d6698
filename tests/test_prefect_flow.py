"""The pipeline as a real Prefect flow run (local ephemeral API, no network), and the
deployment catalogue in prefect.yaml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from ruamel.yaml import YAML

from .conftest import REPO_ROOT


@pytest.mark.prefect
def test_learnops_run_is_a_prefect_flow_run(
    tmp_path: Path, small_org: Path, rules_dir: Path
) -> None:
    warehouse = tmp_path / "w.duckdb"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "flows.cli",
            "run",
            "--feeds",
            str(small_org),
            "--rules",
            str(rules_dir),
            "--warehouse",
            str(warehouse),
            "--as-of",
            "2026-01-01T06:00:00Z",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "succeeded" in result.stdout
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select status from pipeline_run").fetchall() == [("succeeded",)]
        assert con.execute("select count(*) from dim_user").fetchone()[0] == 4


def test_prefect_yaml_deploys_the_pipeline_flow_nightly_with_concurrency_1() -> None:
    catalogue = YAML(typ="safe").load((REPO_ROOT / "prefect.yaml").read_text())
    nightly = {d["name"]: d for d in catalogue["deployments"]}["nightly"]
    assert nightly["entrypoint"] == "flows/prefect_flows.py:pipeline_flow"
    assert nightly["concurrency_limit"]["limit"] == 1
    assert nightly["schedules"][0]["cron"] == "0 2 * * *"
    assert nightly["schedules"][0]["timezone"]
    from prefect.flows import load_flow_from_entrypoint

    flow = load_flow_from_entrypoint(str(REPO_ROOT / nightly["entrypoint"]))
    assert flow.name == "learnops-pipeline"
    assert set(nightly["parameters"]) <= set(flow.parameters.properties)
