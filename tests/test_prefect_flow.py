"""The pipeline as a real Prefect flow run (local ephemeral API, no network), and the
deployment catalogue in prefect.yaml."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
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


def test_prefect_yaml_deploys_the_sending_flow_every_ten_minutes_with_concurrency_1() -> None:
    catalogue = YAML(typ="safe").load((REPO_ROOT / "prefect.yaml").read_text())
    notify = {d["name"]: d for d in catalogue["deployments"]}["notify"]
    assert notify["entrypoint"] == "flows/prefect_flows.py:notify_flow"
    assert notify["concurrency_limit"]["limit"] == 1
    assert notify["schedules"][0]["interval"] == 600
    from prefect.flows import load_flow_from_entrypoint

    flow = load_flow_from_entrypoint(str(REPO_ROOT / notify["entrypoint"]))
    assert flow.name == "learnops-notify"
    assert set(notify["parameters"]) <= set(flow.parameters.properties)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.prefect
def test_prefect_yaml_deploys_to_a_real_server_and_a_process_worker_runs_it(
    tmp_path: Path, small_org: Path, rules_dir: Path
) -> None:
    """`prefect deploy --all` from prefect.yaml, then one scheduled-style run on a worker."""
    port = _free_port()
    env = os.environ | {
        "PREFECT_HOME": str(tmp_path / "prefect_home"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "LEARNOPS_HOME": str(REPO_ROOT),
        "LEARNOPS_FEEDS": str(small_org),
        "LEARNOPS_RULES": str(rules_dir),
        "LEARNOPS_WAREHOUSE": str(tmp_path / "w.duckdb"),
    }
    prefect = [str(Path(sys.executable).with_name("prefect"))]

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*prefect, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
        )

    server = subprocess.Popen(
        [*prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2)
                break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("the Prefect server did not start within 120 s")
        assert call("work-pool", "create", "learnops", "--type", "process").returncode == 0
        deployed = call("--no-prompt", "deploy", "--all")
        assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
        started = call("deployment", "run", "learnops-pipeline/nightly")
        assert started.returncode == 0, started.stderr[-2000:]
        worker = call("worker", "start", "--pool", "learnops", "--run-once")
        assert worker.returncode == 0, worker.stderr[-3000:]
    finally:
        server.terminate()
        server.wait(timeout=30)
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("select status from pipeline_run").fetchall() == [("succeeded",)]
        assert con.execute("select count(*) from dim_user").fetchone()[0] == 4
