"""`rules/notifications.yaml`: who is mailed about what, and the sending settings (SPEC §6).

The format is a public contract (docs/rules.md "Notifications"; the design the pipeline
follows is docs/notifications.md)::

    settings:
      sender: {address: learning@example.com, name: Learning team}
      admins: [lms-admins@example.com]
    notifications:
      - id: program_due_week
        trigger: program_due
        offset: {days: 7}
        scope: all
        recipients: [learner, managers]
        template: program_due

Every trigger fits some scopes and recipients only (:data:`SCOPE_KINDS`,
:data:`RECIPIENT_ROLES`); timed triggers need an offset, event triggers refuse one
(:data:`OFFSET_REQUIRED`, :data:`OFFSET_OPTIONAL`). Whether the ids of a scope exist and the
template files are there is checked by `flows.rules.validation` (the meaning layer), with
every other rules file at hand.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from flows.rules.audiences import Slug
from flows.rules.loader import load_model, suggest
from flows.rules.programs import Period

NOTIFICATIONS_FILE = "notifications.yaml"
#: where templates live: `<base>.subject.txt`, `<base>.html`, `<base>.txt` (+ `<base>.<lang>.*`)
TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "notifications" / "templates"
TEMPLATE_SUFFIXES = (".subject.txt", ".html", ".txt")
#: the fixed templates of the manager digest and of run alerts
DIGEST_TEMPLATE = "manager_digest"
ALERT_TEMPLATE = "run_alert"
#: notification ids the outbox uses itself (a digest row's notification_id)
RESERVED_IDS = frozenset({DIGEST_TEMPLATE})

TRIGGERS = (
    "audience_joined",
    "audience_left",
    "program_assigned",
    "program_unassigned",
    "program_due",
    "program_overdue",
    "courseset_due",
    "courseset_overdue",
    "courseset_completed",
    "program_completed",
    "program_followup",
    "exception_raised",
    "certification_window_open",
    "certification_expiring",
    "certification_expired",
)
#: timed trigger -> what its offset is measured from, and in which direction
OFFSET_REQUIRED = {
    "program_due": "before the due date",
    "program_overdue": "after the due date",
    "courseset_due": "before the course set's due date",
    "courseset_overdue": "after the course set's due date",
    "program_followup": "after the completion",
    "certification_expiring": "before the expiry",
}
#: triggers sent when the event happens, or `offset` after it
OFFSET_OPTIONAL = {
    "certification_window_open": "after the window opens",
    "certification_expired": "after the expiry",
}
#: the offsets that count back from their anchor (every other offset counts forward)
OFFSET_BEFORE = frozenset({"program_due", "courseset_due", "certification_expiring"})

SCOPE_KEYS = ("programs", "certifications", "audiences")
_PROGRAM_KINDS = ("programs", "certifications")  # a certification is a program (§4.3)
#: trigger -> the scope kinds (besides `all`) it accepts
SCOPE_KINDS: dict[str, tuple[str, ...]] = {
    trigger: (
        ("audiences",)
        if trigger.startswith("audience_")
        else ("certifications",)
        if trigger.startswith("certification_")
        else _PROGRAM_KINDS
    )
    for trigger in TRIGGERS
}
ROLES = ("learner", "managers", "admins")
#: trigger -> the recipients it may have ("address" = a fixed `{address: ...}`)
RECIPIENT_ROLES: dict[str, tuple[str, ...]] = {
    trigger: ("learner", "managers", "admins", "address") for trigger in TRIGGERS
} | {"program_followup": ("learner",), "exception_raised": ("admins", "address")}
_RECIPIENT_RULES = {
    "program_followup": "is sent to the learner only",
    "exception_raised": "is sent to admins and fixed addresses only",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _error(loc: tuple[str | int, ...], message: str, value: Any, kind: str) -> InitErrorDetails:
    """One raisable error at `loc` below the node being validated (pydantic prefixes it)."""
    return InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=value)


def _raise(errors: list[InitErrorDetails]) -> None:
    if errors:
        raise ValidationError.from_exception_data("notifications", errors)


# --- scalar types ---------------------------------------------------------------------------

# The feed's rule for an address (flows/hr_import/validate.py): one @, a dot in the domain,
# nothing a header could be split on (spaces, commas, semicolons, angle brackets, quotes).
EMAIL_PATTERN = r"^[^@\s,;<>()\[\]\\\"]+@[^@\s,;<>()\[\]\\\"]+\.[^@\s,;<>()\[\]\\\".]+$"
_EMAIL = re.compile(EMAIL_PATTERN)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check_email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("not a valid e-mail address")
    return value


def _check_display_name(value: str) -> str:
    # a name becomes part of the From header: a line break would start a new header
    if _CONTROL.search(value):
        raise ValueError("a display name is one line of text, without control characters")
    return value


def _check_trigger(value: str) -> str:
    if value not in TRIGGERS:
        hint = suggest(value, TRIGGERS) or f"; use one of {', '.join(TRIGGERS)}"
        raise ValueError(f"unknown trigger '{value}'{hint}")
    return value


def _check_role(value: str) -> str:
    if value not in ROLES:
        hint = suggest(value, ROLES) or "; use learner, managers, admins or {address: ...}"
        raise ValueError(f"unknown recipient '{value}'{hint}")
    return value


def _check_all(value: str) -> str:
    if value != "all":
        raise ValueError("scope is all, or one of programs, certifications, audiences: [ids]")
    return value


Email = Annotated[
    str,
    AfterValidator(_check_email),
    WithJsonSchema({"type": "string", "format": "email", "pattern": EMAIL_PATTERN}),
]
DisplayName = Annotated[
    str,
    Field(min_length=1),
    AfterValidator(_check_display_name),
    WithJsonSchema({"type": "string", "minLength": 1, "pattern": "^[^\\u0000-\\u001f\\u007f]+$"}),
]
Trigger = Annotated[str, AfterValidator(_check_trigger), WithJsonSchema({"enum": list(TRIGGERS)})]
Role = Annotated[str, AfterValidator(_check_role), WithJsonSchema({"enum": list(ROLES)})]
#: a base name only: no dots or slashes, so it can never leave the templates directory
TemplateName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
PositiveInt = Annotated[int, Field(gt=0)]
Share = Annotated[float, Field(gt=0, le=1)]


# --- recipients and scope -------------------------------------------------------------------


class AddressRecipient(_Strict):
    """A fixed address, mailed in addition to (or instead of) the people of the event."""

    address: Email


def _recipient_kind(value: Any) -> str:
    return "~address" if isinstance(value, AddressRecipient | dict) else "~role"


Recipient = Annotated[
    Union[Annotated[Role, Tag("~role")], Annotated[AddressRecipient, Tag("~address")]],  # noqa: UP007
    Discriminator(_recipient_kind),
]


def recipient_role(recipient: str | AddressRecipient) -> str:
    """`learner`, `managers`, `admins`, or `address` for a fixed address."""
    return "address" if isinstance(recipient, AddressRecipient) else recipient


def _exactly_one_schema(keys: tuple[str, ...]) -> dict[str, Any]:
    return {"oneOf": [{"required": [key]} for key in keys]}


ScopeIdList = Annotated[list[Slug], Field(min_length=1)]


class ScopeIds(_Strict):
    """Exactly one of programs, certifications, audiences: the ids the notification is for."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_schema(SCOPE_KEYS))

    programs: ScopeIdList | None = None
    certifications: ScopeIdList | None = None
    audiences: ScopeIdList | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ScopeIds:
        present = [key for key in SCOPE_KEYS if getattr(self, key) is not None]
        if len(present) != 1:
            listed = ", ".join(SCOPE_KEYS)
            several = f", not several ({', '.join(present)})" if present else ""
            raise ValueError(f"a scope has exactly one of {listed}{several}")
        return self

    @property
    def kind(self) -> str:
        return next(key for key in SCOPE_KEYS if getattr(self, key) is not None)

    @property
    def ids(self) -> list[str]:
        """The ids in the order written, each once."""
        return list(dict.fromkeys(getattr(self, self.kind)))


def _scope_kind(value: Any) -> str:
    return "~ids" if isinstance(value, ScopeIds | dict) else "~all"


Scope = Annotated[
    Union[  # noqa: UP007
        Annotated[str, AfterValidator(_check_all), WithJsonSchema({"const": "all"}), Tag("~all")],
        Annotated[ScopeIds, Tag("~ids")],
    ],
    Discriminator(_scope_kind),
]


# --- notifications --------------------------------------------------------------------------


class Notification(_Strict):
    """One rule: on `trigger` (± `offset`), for the objects of `scope`, mail `recipients`
    with the template set `template` (default: the trigger's name)."""

    id: Slug
    trigger: Trigger
    offset: Period | None = None
    scope: Scope
    recipients: Annotated[list[Recipient], Field(min_length=1)]
    template: TemplateName | None = None
    enabled: bool = True

    @model_validator(mode="after")
    def _fits_its_trigger(self) -> Notification:
        errors: list[InitErrorDetails] = []
        if self.id in RESERVED_IDS:
            errors.append(_error(("id",), "this id is reserved for the digest", self.id, "id"))
        errors += self._offset_errors()
        allowed = SCOPE_KINDS[self.trigger]
        if self.scope_kind not in ("all", *allowed):
            choices = ["all", *allowed]
            listed = f"{', '.join(choices[:-1])} or {choices[-1]}"
            message = f"{self.trigger} takes scope {listed}"
            errors.append(_error(("scope",), message, self.scope_kind, "scope"))
        errors += self._recipient_errors()
        _raise(errors)
        return self

    def _offset_errors(self) -> list[InitErrorDetails]:
        if self.trigger in OFFSET_REQUIRED and self.offset is None:
            when = OFFSET_REQUIRED[self.trigger]
            message = f"{self.trigger} needs an offset: how long {when} it is sent"
            # type "missing": the loader names the absent key and points at the notification;
            # a mapping as input, because the loader quotes only scalar inputs
            return [_error(("offset",), message, {}, "missing")]
        timed = self.trigger in OFFSET_REQUIRED or self.trigger in OFFSET_OPTIONAL
        if self.offset is not None and not timed:
            message = f"{self.trigger} is sent when it happens: remove the offset"
            raw = self.offset.model_dump(exclude_none=True)
            return [_error(("offset",), message, raw, "offset")]
        return []

    def _recipient_errors(self) -> list[InitErrorDetails]:
        errors = []
        allowed = RECIPIENT_ROLES[self.trigger]
        seen: set[str | AddressRecipient] = set()
        for index, recipient in enumerate(self.recipients):
            shown = recipient.address if isinstance(recipient, AddressRecipient) else recipient
            if recipient_role(recipient) not in allowed:
                message = f"{self.trigger} {_RECIPIENT_RULES[self.trigger]}"
                errors.append(_error(("recipients", index), message, shown, "recipient"))
            elif recipient in seen:
                errors.append(_error(("recipients", index), "listed twice", shown, "recipient"))
            seen.add(recipient)
        return errors

    @property
    def scope_kind(self) -> str:
        """`all`, `programs`, `certifications` or `audiences`."""
        return self.scope.kind if isinstance(self.scope, ScopeIds) else "all"

    @property
    def scope_ids(self) -> list[str]:
        return self.scope.ids if isinstance(self.scope, ScopeIds) else []

    @property
    def template_name(self) -> str:
        """The template base name: as written, else the trigger's name."""
        return self.template or self.trigger

    @property
    def roles(self) -> set[str]:
        return {recipient_role(recipient) for recipient in self.recipients}

    @property
    def addresses(self) -> list[str]:
        """The fixed addresses, in the order written."""
        return [r.address for r in self.recipients if isinstance(r, AddressRecipient)]


# --- settings and the file ------------------------------------------------------------------


class Sender(_Strict):
    """The From of every mail: an address and an optional display name."""

    address: Email
    name: DisplayName | None = None


class NotificationSettings(_Strict):
    """Sender identity, admins, the mass-send guard, the notification budget, run alerts."""

    sender: Sender | None = None
    reply_to: Email | None = None
    admins: list[Email] = []
    max_per_run: PositiveInt = 500
    # the schema shows the default as written (a dumped Period would list every unit)
    max_lateness: Period = Field(Period(days=7), json_schema_extra={"default": {"days": 7}})
    per_user_daily_cap: PositiveInt | None = 5
    manager_digest: bool = False
    relay_rate_per_minute: PositiveInt | None = None
    alert_addresses: list[Email] = []
    alert_reject_share: Share = 0.05


class NotificationsFile(_Strict):
    """The whole of `rules/notifications.yaml`; a missing or empty file sends nothing."""

    settings: NotificationSettings = NotificationSettings()
    notifications: list[Notification] = []

    @model_validator(mode="after")
    def _settings_fit(self) -> NotificationsFile:
        errors: list[InitErrorDetails] = []
        if self.settings.sender is None and (self.notifications or self.settings.alert_addresses):
            message = "settings.sender is required to send notifications or run alerts"
            errors.append(_error((), message, {}, "sender"))
        if not self.settings.admins:
            for index, notification in enumerate(self.notifications):
                for position, recipient in enumerate(notification.recipients):
                    if recipient == "admins":
                        loc = ("notifications", index, "recipients", position)
                        message = "settings.admins lists nobody to send to"
                        errors.append(_error(loc, message, recipient, "recipient"))
        _raise(errors)
        return self


def load_notifications(rules_dir: Path) -> NotificationsFile:
    """Read `rules_dir/notifications.yaml` (schema layer only); missing or empty: none."""
    return load_model(rules_dir / NOTIFICATIONS_FILE, NotificationsFile)


def template_files(name: str) -> tuple[str, ...]:
    """The file names of template `name`'s default parts (subject, HTML, text)."""
    return tuple(f"{name}{suffix}" for suffix in TEMPLATE_SUFFIXES)


def missing_template_files(name: str, templates_dir: Path = TEMPLATES_DIR) -> list[str]:
    """The default parts of template `name` that `templates_dir` lacks (none: it is usable)."""
    return [file for file in template_files(name) if not (templates_dir / file).is_file()]
