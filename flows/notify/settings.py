"""Mail delivery settings: `LEARNOPS_SMTP_*` and `LEARNOPS_OUTBOX_DIR` (SPEC §8).

These are the data team's settings (where mail goes, how to log in), kept apart from the
admins' `rules/notifications.yaml` (who gets what, the sender identity). With no
`LEARNOPS_SMTP_HOST`, delivery writes `.eml` files instead of talking SMTP: the embedded
default the demo uses.

The password is a `SecretStr`: it never appears in `repr`, logs or error messages. It comes
from `LEARNOPS_SMTP_PASSWORD`, or from the Prefect Secret block named by
`LEARNOPS_SMTP_PASSWORD_BLOCK`, loaded only when a connection actually logs in (so a host
without Prefect configured can still write `.eml` files).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from flows.warehouse import WarehousePaths


class SmtpSecurity(StrEnum):
    """How the connection is protected."""

    NONE = "none"  # plain SMTP (a relay on localhost, tests)
    STARTTLS = "starttls"  # plain connect, then STARTTLS is required (port 587)
    TLS = "tls"  # implicit TLS from the first byte (port 465)


class SmtpSettings(BaseSettings):
    """Where and how mail is delivered; each field `x` is read from `LEARNOPS_SMTP_X`."""

    model_config = SettingsConfigDict(
        env_prefix="LEARNOPS_SMTP_", extra="ignore", populate_by_name=True
    )

    host: str | None = Field(default=None, description="relay host; unset = write .eml files")
    port: int | None = Field(default=None, ge=1, le=65535, description="default per security")
    security: SmtpSecurity = Field(default=SmtpSecurity.STARTTLS)
    username: str | None = None
    password: SecretStr | None = None
    password_block: str | None = Field(
        default=None, description="name of a Prefect Secret block holding the password"
    )
    ca_file: Path | None = Field(
        default=None, description="extra CA bundle to trust (a private relay, tests)"
    )
    connections: int = Field(default=4, ge=1, le=64, description="parallel SMTP connections")
    timeout: float = Field(default=30.0, gt=0, description="seconds per SMTP command")
    max_attempts: int = Field(default=5, ge=1, description="attempts before a message fails")
    backoff_base: float = Field(
        default=1.0, ge=0, description="first retry delay in seconds; doubles per attempt"
    )
    backoff_max: float = Field(default=60.0, ge=0, description="longest retry delay")
    outbox_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("outbox_dir", "LEARNOPS_OUTBOX_DIR"),
        description="where .eml files go; default <warehouse>.learnops/outbox",
    )

    @property
    def uses_smtp(self) -> bool:
        """True when a relay is configured; False means the `.eml` outbox."""
        return bool(self.host)

    @property
    def effective_port(self) -> int:
        """The configured port, or the conventional one for the security mode."""
        if self.port:
            return self.port
        return {SmtpSecurity.NONE: 25, SmtpSecurity.STARTTLS: 587, SmtpSecurity.TLS: 465}[
            self.security
        ]

    def outbox_path(self, paths: WarehousePaths) -> Path:
        """The `.eml` directory for the warehouse at `paths`."""
        return self.outbox_dir if self.outbox_dir else paths.state_dir / "outbox"

    def resolve_password(self) -> str | None:
        """The password from the environment, else from the Prefect Secret block, else None.

        The block is read here, lazily, because importing Prefect and reaching its API costs
        seconds and is only needed when a relay asks for a login.
        """
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_block:
            from prefect.blocks.system import Secret  # lazy: Prefect is heavy

            value = Secret.load(self.password_block).get()
            return None if value is None else str(value)
        return None

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (1 = the first retry): base x 2^(n-1), capped."""
        return min(self.backoff_max, self.backoff_base * (2 ** max(0, attempt - 1)))


def load_smtp_settings(**overrides: object) -> SmtpSettings:
    """SMTP settings from the environment, with non-None keyword overrides applied."""
    return SmtpSettings(**{k: v for k, v in overrides.items() if v is not None})
