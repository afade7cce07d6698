"""One outbox row -> one `email.message.EmailMessage` (a pure function: nothing is sent here).

Templates live in `notifications/templates/` as three parts per base name:
`<base>.subject.txt`, `<base>.txt` and `<base>.html`, with language variants
`<base>.<lang>.<part>` chosen part by part (docs/notifications.md#templates).

Decisions worth knowing:

- Only `.html` parts are autoescaped; subject and text are plain text, and the subject is
  folded to one line (every CR, LF and other control character becomes a space) before it
  becomes a header.
- Undefined values render empty (`ChainableUndefined`): every `context` key is optional by
  contract, so `{{ object.name }}` with no `object`, or `{% if due_at %}`, must not crash a
  send. The price is that a misspelt key also renders empty; template tests catch those.
- Display names come from HR data: control characters (CR/LF included) are removed before
  they reach `Address`, and addresses with whitespace or control characters are refused,
  so no value can add a header. Addresses are checked by `email.headerregistry`.
- `Message-ID` is `<message_id@learnops>`: stable across retries, so a relay or client that
  sees a resend after a crash can recognise it.
"""

from __future__ import annotations

import functools
import json
import quopri
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email import message_from_bytes
from email.errors import HeaderParseError
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2

# A lang value is HR data that becomes part of a file name: keep only tags like fr, pt_br.
_LANG = re.compile(r"^[a-z]{2,3}([_-][a-z0-9]{2,8})?$")
_TEMPLATE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
PARTS = ("subject.txt", "txt", "html")


class RenderError(ValueError):
    """The row's data cannot become a message (bad address, context or id): final."""


class TemplateProblem(Exception):
    """A template is missing or broken: the admins' to fix, so the message stays pending."""


@dataclass(frozen=True)
class Sender:
    """The From identity (and optional Reply-To), a setting of rules/notifications.yaml."""

    address: str
    name: str = ""
    reply_to: str | None = None


def clean_display_name(value: object) -> str:
    """A display name without control characters (CR/LF included), whitespace collapsed."""
    text = "" if value is None else str(value)
    kept = "".join(" " if unicodedata.category(ch)[0] in "CZ" else ch for ch in text)
    return " ".join(kept.split())[:200]


def make_address(display_name: object, addr_spec: object) -> Address:
    """An `Address`, refusing address text that could carry a second header or recipient."""
    spec = "" if addr_spec is None else str(addr_spec)
    if not spec or any(ch.isspace() or unicodedata.category(ch)[0] == "C" for ch in spec):
        raise RenderError(f"invalid email address {spec!r}")
    try:
        address = Address(display_name=clean_display_name(display_name), addr_spec=spec)
    except (ValueError, IndexError, TypeError, HeaderParseError) as error:
        raise RenderError(f"invalid email address {spec!r}: {error}") from None
    if not address.username or not address.domain or address.addr_spec != spec:
        raise RenderError(f"invalid email address {spec!r}")
    return address


def fold_subject(text: str) -> str:
    """One header-safe line: every control or line-separator character becomes a space."""
    return clean_display_name(text)[:250] if text else ""


def _zone(name: object) -> ZoneInfo:
    try:
        return ZoneInfo(str(name)) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _instant(value: object) -> datetime | date | None:
    """An ISO string, datetime or date as a datetime (UTC if naive) or a plain date."""
    if value is None or isinstance(value, jinja2.Undefined) or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return value
    text = str(value)
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _recipient_zone(context: jinja2.runtime.Context) -> ZoneInfo:
    recipient = context.get("recipient") or {}
    return _zone(recipient.get("timezone") if isinstance(recipient, Mapping) else None)


@jinja2.pass_context
def local_date(context: jinja2.runtime.Context, value: object) -> str:
    """'1 June 2026': the instant's date in the recipient's timezone (empty if absent)."""
    instant = _instant(value)
    if instant is None:
        return ""
    if isinstance(instant, datetime):
        instant = instant.astimezone(_recipient_zone(context)).date()
    return f"{instant.day} {instant:%B %Y}"


@jinja2.pass_context
def local_datetime(context: jinja2.runtime.Context, value: object) -> str:
    """'1 June 2026, 09:00 BST': the instant in the recipient's timezone (empty if absent)."""
    instant = _instant(value)
    if instant is None:
        return ""
    if not isinstance(instant, datetime):
        return f"{instant.day} {instant:%B %Y}"
    local = instant.astimezone(_recipient_zone(context))
    return f"{local.day} {local:%B %Y}, {local:%H:%M} {local.tzname()}"


def _environment(templates_dir: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html",), default_for_string=False, default=False
        ),
        undefined=jinja2.ChainableUndefined,
        auto_reload=False,  # templates do not change during a send; skip the stat per use
        keep_trailing_newline=False,
    )
    env.filters["local_date"] = local_date
    env.filters["local_datetime"] = local_datetime
    return env


class Renderer:
    """Renders outbox rows with one templates directory; compiled templates are cached."""

    def __init__(self, templates_dir: Path, sender: Sender) -> None:
        self.templates_dir = Path(templates_dir)
        self.sender = sender
        self.from_address = make_address(sender.name, sender.address)
        self.reply_to = make_address("", sender.reply_to) if sender.reply_to else None
        self._env = _environment(self.templates_dir)
        self._cache: dict[tuple[str, str | None, str], jinja2.Template | None] = {}

    def _template(self, base: str, lang: str | None, part: str) -> jinja2.Template | None:
        key = (base, lang, part)
        if key not in self._cache:
            names = [f"{base}.{lang}.{part}"] if lang else []
            if lang and ("_" in lang or "-" in lang):
                names.append(f"{base}.{re.split('[_-]', lang)[0]}.{part}")
            names.append(f"{base}.{part}")
            try:
                self._cache[key] = self._env.select_template(names)
            except jinja2.TemplatesNotFound:
                self._cache[key] = None
            except jinja2.TemplateError as error:  # a syntax error: not cached, fix and rerun
                raise TemplateProblem(f"template {names[-1]}: {error}") from None
        return self._cache[key]

    def _parts(self, row: Mapping[str, Any]) -> dict[str, jinja2.Template | None]:
        base = str(row.get("template") or "")
        if not _TEMPLATE.match(base):
            raise RenderError(f"invalid template name {base!r}")
        lang = str(row.get("recipient_lang") or "").strip().lower() or None
        lang = lang if lang and _LANG.match(lang) else None
        parts = {part: self._template(base, lang, part) for part in PARTS}
        missing = [f"{base}.{p}" for p in ("subject.txt", "txt") if parts[p] is None]
        if missing:
            raise TemplateProblem(f"template missing in {self.templates_dir}: {', '.join(missing)}")
        return parts

    def render_bytes(self, row: Mapping[str, Any], *, date_header: datetime | None = None) -> bytes:
        """The message for one outbox row as it goes on the wire (CRLF line ends)."""
        parts = self._parts(row)
        variables = _variables(row)
        try:
            subject = fold_subject(parts["subject.txt"].render(variables))
            text = parts["txt"].render(variables) + "\n"
            html = parts["html"].render(variables) if parts["html"] is not None else None
        except jinja2.TemplateError as error:
            raise TemplateProblem(f"template {row.get('template')}: {error}") from None
        to = make_address(row.get("recipient_name"), row.get("recipient_email"))
        message_id = message_id_header(str(row["message_id"]))
        headers = [
            f"Subject: {_encode_header(subject)}",
            f"From: {_format_address(self.from_address)}",
            f"To: {_format_address(to)}",
            *([f"Reply-To: {_format_address(self.reply_to)}"] if self.reply_to else []),
            f"Date: {format_datetime(date_header or datetime.now(UTC))}",
            f"Message-ID: {message_id}",
            "Auto-Submitted: auto-generated",  # RFC 3834: no auto-replies to this
            "MIME-Version: 1.0",
        ]
        if html is None:
            return _CRLF.join(h.encode() for h in headers) + _CRLF + _text_part("plain", text)
        # Quoted-printable never yields "=_", so this boundary cannot occur in a part.
        boundary = f"=_learnops_{row['message_id']}".encode()
        headers.append(f'Content-Type: multipart/alternative; boundary="{boundary.decode()}"')
        return b"".join([
            _CRLF.join(h.encode() for h in headers), _CRLF * 2,
            b"--", boundary, _CRLF, _text_part("plain", text), _CRLF,
            b"--", boundary, _CRLF, _text_part("html", html), _CRLF,
            b"--", boundary, b"--", _CRLF,
        ])  # fmt: skip

    def render(
        self, row: Mapping[str, Any], *, date_header: datetime | None = None
    ) -> EmailMessage:
        """The message for one outbox row as an `EmailMessage` (parsed from its bytes)."""
        data = self.render_bytes(row, date_header=date_header)
        return message_from_bytes(data, _class=EmailMessage, policy=default_policy)


_CRLF = b"\r\n"


def _encode_header(value: str) -> str:
    """An unstructured header value: ASCII as is, else RFC 2047; folded at 78 columns."""
    charset = "us-ascii" if value.isascii() else "utf-8"
    return Header(value, charset, header_name="Subject").encode(linesep="\r\n")


def _format_address(address: Address) -> str:
    """`Name <addr>` with the name quoted or RFC 2047-encoded as needed."""
    return formataddr((address.display_name, address.addr_spec), charset="utf-8")


def _text_part(subtype: str, body: str) -> bytes:
    """One text part (headers and quoted-printable UTF-8 body) with CRLF line ends.

    Built by hand rather than with `EmailMessage.set_content`: the email package's header
    objects cost about 2 ms per message, most of a sender's CPU budget at 300 messages/s.
    Every header value here is a constant; the body is encoded, so it cannot end the part.
    """
    lines = body.replace("\r\n", "\n").replace("\r", "\n")
    encoded = quopri.encodestring(lines.encode("utf-8")).replace(b"\n", _CRLF)
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode() + encoded


def message_id_header(message_id: str) -> str:
    """The Message-ID header value of an outbox message id."""
    if not re.fullmatch(r"[0-9A-Za-z._-]+", message_id):
        raise RenderError(f"invalid message id {message_id!r}")
    return f"<{message_id}@learnops>"


def _variables(row: Mapping[str, Any]) -> dict[str, Any]:
    """The template's variables: the decoded context plus `recipient`."""
    raw = row.get("context")
    try:
        context = json.loads(raw) if isinstance(raw, str | bytes) else dict(raw or {})
    except (json.JSONDecodeError, TypeError, ValueError) as error:
        raise RenderError(f"context is not a JSON object: {error}") from None
    if not isinstance(context, dict):
        raise RenderError("context is not a JSON object")
    context["recipient"] = {
        "name": clean_display_name(row.get("recipient_name")),
        "email": row.get("recipient_email"),
        "role": row.get("recipient_role"),
        "timezone": row.get("recipient_timezone"),
        "lang": row.get("recipient_lang"),
    }
    return context


@functools.lru_cache(maxsize=8)
def _renderer(templates_dir: Path, sender: Sender) -> Renderer:
    return Renderer(templates_dir, sender)


def render_message(
    row: Mapping[str, Any],
    templates_dir: Path,
    sender: Sender,
    *,
    date_header: datetime | None = None,
) -> EmailMessage:
    """Build the message for one outbox row; templates are compiled once per directory."""
    return _renderer(Path(templates_dir), sender).render(row, date_header=date_header)
