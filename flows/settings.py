"""Data-team configuration: `LEARNOPS_*` environment variables (SPEC §8).

Admin rules live in `rules/`; everything about *where* learnops runs lives here. CLI
options override these values for one command.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Deployment settings; each field `x` is read from `LEARNOPS_X`."""

    model_config = SettingsConfigDict(env_prefix="LEARNOPS_", extra="ignore")

    warehouse: Path = Field(default=Path("warehouse.duckdb"), description="published DuckDB file")
    feeds: Path = Field(default=Path("feeds"), description="feed directory")
    rules: Path = Field(default=Path("rules"), description="rules directory")
    site_timezone: str = Field(default="UTC", description="IANA zone of dates without a time")
    templates_dir: Path = Field(
        default=Path(__file__).resolve().parents[1] / "notifications" / "templates",
        description="notification templates (validated with the rules, rendered when sending)",
    )
    lock_wait_seconds: float = Field(
        default=0.0, ge=0, description="how long a writer waits for the warehouse lock"
    )

    @field_validator("site_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_timezone(value)


def check_timezone(value: str) -> str:
    """`value` if it names an IANA timezone, else a ValueError saying what to write."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone '{value}' (use an IANA name such as Europe/London)"
        ) from None
    return value


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with non-None keyword overrides applied."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
