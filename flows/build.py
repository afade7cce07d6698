"""Build step: run ``dbt build`` in-process against one warehouse file.

dbt is invoked through :class:`dbt.cli.main.dbtRunner` rather than the CLI: the CLI costs
about 5 s of start-up per call, an in-process call about 0.4 s once dbt is imported.

Each warehouse keeps its own dbt state (``state_dir/dbt/target`` and ``state_dir/dbt/logs``):
partial parsing is only valid for the profile it was parsed with (dbt hashes the database
path into it), and two test warehouses built at once never share a ``target/`` folder.

The as-of instant is never passed as a dbt var (a changed var forces a full re-parse): the
caller writes it into ``learnops.run_context`` (exactly one row) before calling
:func:`build_warehouse`, and the models and snapshots read it from there.

A process that builds several warehouses (the test suite, benchmarks) can set
``LEARNOPS_DBT_REUSE_MANIFEST=1``: the project is then parsed once per process and database
name, and later builds hand the parsed manifest to dbt (``dbtRunner(manifest=...)``, dbt's
documented way to reuse one) instead of parsing again. Without it, each new warehouse path
costs dbt a full parse (its partial-parse state is keyed on the profile, which holds the
path), a few seconds each. The manifest is keyed on the database name (it names every
relation) and a digest of the project's files, so an edited model is parsed again.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"

# Telemetry off, so nothing waits on DNS (STACK_NOTES); set only for the duration of a call.
_DBT_ENVIRONMENT = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DO_NOT_TRACK": "1",
}

# dbt keeps process-global state (flags, adapter registry, the DuckDB environment): two
# builds in one process must not overlap.
_BUILD_LOCK = threading.Lock()

#: What a pipeline build leaves out by default. dbt unit tests check SQL logic on fixed
#: inputs: CI runs them, the warehouse's data cannot change their outcome. Tests tagged
#: ``exhaustive`` restate how the management bridges are built (the uniqueness of a group by,
#: of the pairs on a forest's paths) and cost about 15 s at 1M users. Pass ``exclude=None``
#: to run everything.
PRODUCTION_EXCLUDE = "resource_type:unit_test tag:exhaustive"

#: Environment variable that turns on in-process manifest reuse (see the module docstring).
REUSE_MANIFEST_ENV = "LEARNOPS_DBT_REUSE_MANIFEST"

# (database name, digest of the project's files) -> dbt's parsed Manifest
_MANIFESTS: dict[tuple[str, str], Any] = {}

_FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})
_BUILT_RESOURCE_TYPES = frozenset({"model", "snapshot", "seed"})
_TEST_RESOURCE_TYPES = frozenset({"test", "unit_test"})
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
_MAX_DETAIL_CHARS = 400


@dataclass(frozen=True)
class BuildResult:
    """What one ``dbt build`` did.

    ``models_built`` counts models and snapshots built; ``tests_passed`` counts data and
    unit tests that passed; ``node_timings`` maps each node's name to its execution time in
    seconds; ``elapsed_s`` is the wall time of the call: dbt's import (the first call in a
    process), parsing (partial when the state under ``state_dir`` allows) and the build.
    """

    models_built: int
    tests_passed: int
    elapsed_s: float
    node_timings: dict[str, float]


class BuildError(RuntimeError):
    """``dbt build`` failed: one line per failing node (or dbt's own error), no traceback."""

    def __init__(self, failures: list[str]) -> None:
        self.failures = failures
        super().__init__("dbt build failed:\n" + "\n".join(f"  {line}" for line in failures))


def build_warehouse(
    database: Path,
    *,
    state_dir: Path,
    select: str | None = None,
    exclude: str | None = PRODUCTION_EXCLUDE,
    indirect_selection: str | None = None,
) -> BuildResult:
    """Run ``dbt build`` against the DuckDB file ``database`` and return what it did.

    The caller must have created the source tables (``flows.state_schema
    .ensure_state_schema``), filled ``learnops.run_context`` with exactly one row (the run
    being built) and closed its own connections to ``database``: dbt opens it for writing
    and closes it again before returning.

    ``select`` / ``exclude`` are dbt node selections (e.g. ``"+dim_user"``); by default the
    unit tests and the ``exhaustive`` tests are left out (see :data:`PRODUCTION_EXCLUDE`).
    ``indirect_selection`` is dbt's ``--indirect-selection`` (``eager``, ``cautious``,
    ``buildable``, ``empty``); None leaves dbt's default, ``eager``, which also runs every
    test that touches a selected model, so a ``relationships`` test from a selected model to
    one outside the selection fails on a table that was never built. ``cautious`` runs a
    test only when all of its parents are selected: the way to build part of the project
    (``select="+fct_certification_user"``) with every test that applies to that part.
    Raises :class:`BuildError` when any model, snapshot or test fails.
    """
    # absolute: dbt runs in dbt_project/, where a relative path would land
    dbt_state = state_dir.resolve() / "dbt"
    target_path = dbt_state / "target"
    log_path = dbt_state / "logs"
    target_path.mkdir(parents=True, exist_ok=True)
    log_path.mkdir(parents=True, exist_ok=True)

    common = [
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(target_path),
        "--log-path",
        str(log_path),
        "--partial-parse",
        "--no-send-anonymous-usage-stats",
        "--no-use-colors",
        # stdout: warnings and errors only; the file log under state_dir keeps the detail.
        "--log-level",
        "warn",
        "--log-level-file",
        "info",
    ]
    args = ["build", *common]
    if select:
        args += ["--select", select]
    if exclude:
        args += ["--exclude", exclude]
    if indirect_selection:
        args += ["--indirect-selection", indirect_selection]

    environment = {"LEARNOPS_WAREHOUSE": str(database.resolve()), **_DBT_ENVIRONMENT}
    with _BUILD_LOCK, _environment(environment):
        started = time.perf_counter()
        # Imported here: importing dbt costs seconds, and most commands never build.
        from dbt.cli.main import dbtRunner

        try:
            manifest = _parsed_manifest(database, common) if _reuse_manifest() else None
            outcome = dbtRunner(manifest=manifest).invoke(args)
        finally:
            _close_duckdb()
        elapsed_s = time.perf_counter() - started

    if outcome.exception is not None:
        raise BuildError([f"dbt: {_one_line(str(outcome.exception))}"])
    run_results = getattr(outcome.result, "results", None)
    if run_results is None:
        raise BuildError([f"dbt: unexpected result {type(outcome.result).__name__}"])

    result = _summarise(run_results, elapsed_s)
    failures = _failures(run_results)
    if failures or not outcome.success:
        raise BuildError(failures or ["dbt: build reported failure without a failing node"])
    return result


def _reuse_manifest() -> bool:
    return os.environ.get(REUSE_MANIFEST_ENV, "").strip().lower() in {"1", "true", "yes"}


def _parsed_manifest(database: Path, common: list[str]) -> Any:
    """The manifest parsed earlier in this process for this database name and project
    state, else a fresh ``dbt parse`` (partial when ``state_dir`` allows); None if parsing
    failed (the build then parses and reports the error itself)."""
    from dbt.cli.main import dbtRunner

    key = (database.stem, _project_digest())
    if key not in _MANIFESTS:
        parsed = dbtRunner().invoke(["parse", *common])
        if not parsed.success or parsed.result is None:
            return None
        _MANIFESTS[key] = parsed.result
    return _MANIFESTS[key]


def _project_digest() -> str:
    """A digest of every file dbt parses (models, macros, tests, snapshots, YAML)."""
    digest = hashlib.sha256()
    for path in sorted(DBT_PROJECT_DIR.rglob("*")):
        relative = path.relative_to(DBT_PROJECT_DIR)
        if relative.parts[0] in {"target", "logs", "dbt_packages"} or not path.is_file():
            continue
        digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _close_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open after a build.

    dbt-duckdb caches its DuckDB environment (and so the open database file) in a class
    attribute across invocations. Left open, it keeps the file's write lock and makes any
    other connection to the file in this process fail ("different configuration").
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    try:
        environment = DuckDBConnectionManager.env()
    except Exception:  # no environment was created (dbt failed before connecting)
        return
    DuckDBConnectionManager.close_all_connections()
    environment.close()


def _summarise(run_results: list[Any], elapsed_s: float) -> BuildResult:
    """Count what was built and tested, and collect each node's execution time."""
    models_built = 0
    tests_passed = 0
    node_timings: dict[str, float] = {}
    for node_result in run_results:
        node = node_result.node
        status, resource_type = str(node_result.status), str(node.resource_type)
        node_timings[node.name] = float(node_result.execution_time or 0.0)
        if resource_type in _BUILT_RESOURCE_TYPES and status == "success":
            models_built += 1
        elif resource_type in _TEST_RESOURCE_TYPES and status == "pass":
            tests_passed += 1
    return BuildResult(
        models_built=models_built,
        tests_passed=tests_passed,
        elapsed_s=elapsed_s,
        node_timings=node_timings,
    )


def _failures(run_results: list[Any]) -> list[str]:
    """One line per failed node, naming it and what dbt said; skipped nodes summed up."""
    failures = []
    skipped = 0
    for node_result in run_results:
        status = str(node_result.status)
        node = node_result.node
        if status in _FAILED_STATUSES:
            detail = _one_line(node_result.message or status)
            failures.append(f"{node.resource_type} {node.name}: {detail}")
        elif status == "skipped":
            skipped += 1
    if failures and skipped:
        failures.append(f"({skipped} downstream nodes skipped)")
    return failures


def _one_line(text: str) -> str:
    """Collapse dbt's multi-line, possibly coloured message into one bounded line.

    The "> in macro ... > called by ..." lines of a compilation error (Jinja's call chain,
    a stack trace in all but name) are dropped.
    """
    lines = _ANSI_ESCAPE.sub("", text).splitlines()
    flat = " ".join(" ".join(line for line in lines if not line.lstrip().startswith(">")).split())
    if len(flat) > _MAX_DETAIL_CHARS:
        flat = flat[: _MAX_DETAIL_CHARS - 1] + "…"
    return flat


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block, then restore them."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, previous in saved.items():
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous
