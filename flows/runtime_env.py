"""Environment defaults set before Prefect or dbt is imported.

Nothing here overrides a value the data team set. Telemetry is off so nothing waits on DNS
(these machines reach only package registries); Prefect's ephemeral API server gets a
start-up timeout that a cold 2-core machine can meet, and a home of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

_DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}


def configure_runtime_env() -> None:
    """Apply the defaults (idempotent; explicit environment values win)."""
    for name, value in _DEFAULTS.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("PREFECT_HOME", str(REPO_ROOT / ".prefect"))
