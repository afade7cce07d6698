"""Send the outbox's due messages over SMTP (or write `.eml` files); record every outcome.

`deliver_pending` reads the *published* warehouse read-only, so BI tools and `explain` keep
working while mail goes out, and writes what happens to the delivery ledger
(flows/notify/ledger.py). The caller holds the warehouse writer lock and republishes the
outbox afterwards (`republish_outbox`).

How a send behaves (docs/notifications.md#delivery):

- `connections` SMTP connections, each reused for many messages, drain one queue (asyncio,
  so concurrency is bounded by the connection count).
- A 4xx reply or a connection lost during a message is transient: the message is retried
  after `backoff_base x 2^(n-1)` seconds until `max_attempts`, then `failed`. A 5xx reply
  fails the message at once with the server's reply in `last_error`. Failing to *connect*
  is not charged to any message: after `max_attempts` connection tries the run stops and
  the untouched messages stay pending for the next run (nothing lost).
- Outcomes are committed in batches (`commit_every` outcomes or `commit_interval` seconds,
  whichever first). A crash can therefore resend at most the outcomes not yet committed
  plus one message in flight per connection: `commit_every - 1 + connections`.
- A relay rate limit (messages per minute) spaces sends evenly and never lets more than
  that many go in any 60 s, counting the ledger's recent sends, so it holds across runs and
  restarts. Messages the limit pushes past the run's `max_seconds` stay pending.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import hashlib
import logging
import os
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosmtplib

from flows.notify.ledger import TERMINAL, Ledger, Outcome
from flows.notify.render import (
    Renderer,
    RenderError,
    Sender,
    TemplateProblem,
    fold_subject,
    make_address,
)
from flows.notify.settings import SmtpSecurity, SmtpSettings
from flows.warehouse import WarehousePaths, open_published, table_exists

log = logging.getLogger(__name__)

OUTBOX_TABLE = "main.notification_outbox"
OUTBOX_COLUMNS = (
    "message_id", "dedupe_key", "notification_id", "event_type", "user_id", "object_kind",
    "object_id", "anchor_at", "cycle", "trigger_at", "recipient_role", "recipient_user_id",
    "recipient_email", "recipient_name", "recipient_timezone", "recipient_lang", "template",
    "context", "status", "not_before", "digest_message_id", "attempts", "created_at",
    "created_run_id", "sent_at", "last_error",
)  # fmt: skip

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


def utc_now() -> datetime:
    """The wall clock, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass
class DeliveryReport:
    """What one delivery run did."""

    mode: str  # "smtp" or "eml"
    selected: int = 0  # due messages found in the published outbox
    sent: int = 0
    failed: int = 0
    retried: int = 0  # transient failures that were (or will be) retried
    rate_limited: int = 0  # left pending: the relay rate limit used up this run's time
    unsent: int = 0  # left pending: the relay could not be reached
    template_errors: int = 0  # left pending: a template is missing or broken
    connections: int = 0
    commit_every: int = 0
    elapsed_seconds: float = 0.0
    last_error: str | None = None

    @property
    def messages_per_second(self) -> float:
        """Sent messages per second of the run."""
        return self.sent / self.elapsed_seconds if self.elapsed_seconds else 0.0


@dataclass
class _Job:
    row: dict[str, Any]
    attempts: int
    payload: bytes | None = None
    started_at: datetime | None = None  # when the last attempt began: its sent_at

    @property
    def message_id(self) -> str:
        return str(self.row["message_id"])


@dataclass
class _Recorder:
    """Buffers outcomes and commits them to the ledger in small batches."""

    ledger: Ledger
    every: int
    interval: float
    buffer: list[Outcome] = field(default_factory=list)
    last_flush: float = field(default_factory=time.monotonic)

    def add(self, outcome: Outcome) -> None:
        self.buffer.append(outcome)
        # Synchronous on purpose: no other outcome can slip in between append and commit,
        # which is what makes the in-flight bound exact.
        if len(self.buffer) >= self.every or time.monotonic() - self.last_flush >= self.interval:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.ledger.record_outcomes(self.buffer)
            self.buffer.clear()
        self.last_flush = time.monotonic()


class RateLimiter:
    """At most `per_minute` sends in any 60 s, spaced evenly, seeded from earlier sends."""

    def __init__(self, per_minute: float, recent: Sequence[datetime], now: Clock, sleep: Sleep):
        self.per_minute = per_minute
        self.interval = 60.0 / per_minute
        self.now = now
        self.sleep = sleep
        self.window: collections.deque[float] = collections.deque(t.timestamp() for t in recent)
        self.next_at = self.window[-1] + self.interval if self.window else float("-inf")
        self.lock = asyncio.Lock()

    async def acquire(self, deadline: float) -> bool:
        """Wait for the next slot; False (without waiting) when it lies past `deadline`."""
        async with self.lock:  # one waiter at a time: slots are handed out in order
            current = self.now().timestamp()
            while self.window and self.window[0] <= current - 60.0:
                self.window.popleft()
            slot = self.next_at
            if len(self.window) >= self.per_minute:
                slot = max(slot, self.window[-int(self.per_minute)] + 60.0)
            if slot > deadline:
                return False
            if slot > current:
                await self.sleep(slot - current)
                current = max(slot, self.now().timestamp())
            self.window.append(current)
            self.next_at = current + self.interval
            return True


def _select_due(
    paths: WarehousePaths, ledger: Ledger, now: datetime, limit: int | None
) -> list[_Job]:
    """Due rows of the published outbox that the ledger has not finished with."""
    if not paths.published.exists():
        return []
    with open_published(paths) as con:
        con.execute("set TimeZone = 'UTC'")
        if not table_exists(con, "main", "notification_outbox"):
            return []
        cursor = con.execute(
            f"select {', '.join(OUTBOX_COLUMNS)} from {OUTBOX_TABLE} "  # noqa: S608 (constants)
            "where status in ('pending', 'held') or (status = 'deferred' and not_before <= ?) "
            "order by trigger_at, message_id",
            [now],
        )
        rows = [dict(zip(OUTBOX_COLUMNS, row, strict=True)) for row in cursor.fetchall()]
    outcomes, released = ledger.outcomes(), ledger.released()
    jobs: list[_Job] = []
    for row in rows:
        status, attempts = outcomes.get(row["message_id"], (None, 0))
        if status in TERMINAL or not row["recipient_email"]:
            continue
        if row["status"] == "held" and row["message_id"] not in released:
            continue
        jobs.append(_Job(row=row, attempts=max(attempts, row["attempts"] or 0)))
        if limit is not None and len(jobs) >= limit:
            break
    return jobs


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to completion, also when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def deliver_pending(
    paths: WarehousePaths,
    smtp_settings: SmtpSettings,
    sender: Sender,
    *,
    templates_dir: Path,
    now: Clock = utc_now,
    rate_per_minute: float | None = None,
    limit: int | None = None,
    max_seconds: float | None = 300.0,
    commit_every: int = 50,
    commit_interval: float = 0.5,
    sleep: Sleep = asyncio.sleep,
    after_send: Callable[[str], None] | None = None,
) -> DeliveryReport:
    """Send every due message of the published outbox; returns the counts.

    Due: `pending`; `deferred` with `not_before <= now()`; `held` and released in the
    ledger; minus messages the ledger already records as sent or failed. The caller holds
    the writer lock. `max_seconds` bounds how long the rate limit may stretch the run;
    `sleep` and `now` are injectable (tests), `after_send(message_id)` is called after each
    accepted message, before its outcome is recorded (fault injection).
    """
    started = time.perf_counter()
    report = DeliveryReport(
        mode="smtp" if smtp_settings.uses_smtp else "eml", commit_every=commit_every
    )
    renderer = Renderer(templates_dir, sender)
    with Ledger(paths) as ledger:
        jobs = _select_due(paths, ledger, now(), limit)
        report.selected = len(jobs)
        recorder = _Recorder(ledger, max(1, commit_every), commit_interval)
        try:
            if not jobs:
                pass
            elif smtp_settings.uses_smtp:
                report.connections = min(smtp_settings.connections, len(jobs))
                limiter = (
                    RateLimiter(rate_per_minute, ledger.sent_in_last(60.0, now=now()), now, sleep)
                    if rate_per_minute
                    else None
                )
                delivery = _SmtpDelivery(
                    jobs, smtp_settings, sender, renderer, recorder, report,
                    limiter=limiter, now=now, sleep=sleep, after_send=after_send,
                    deadline=now().timestamp() + max_seconds if max_seconds else float("inf"),
                )  # fmt: skip
                _run(delivery.run())
            else:
                _write_eml(jobs, smtp_settings.outbox_path(paths), renderer, recorder, report, now,
                           after_send)  # fmt: skip
        finally:
            recorder.flush()  # what is known is kept, also when an error ends the run
    report.elapsed_seconds = time.perf_counter() - started
    log.info(
        "mail: %d due, %d sent, %d failed, %d retried, %d rate-limited, %d unsent, "
        "%d template errors (%s, %.1f s)",
        report.selected, report.sent, report.failed, report.retried, report.rate_limited,
        report.unsent, report.template_errors, report.mode, report.elapsed_seconds,
    )  # fmt: skip
    return report


def _render(job: _Job, renderer: Renderer, now: Clock) -> bytes:
    if job.payload is None:
        job.payload = renderer.render_bytes(job.row, date_header=now())
    return job.payload


def _outcome(job: _Job, status: str, now: Clock, error: str | None = None) -> Outcome:
    stamp = now()
    return Outcome(
        message_id=job.message_id,
        status=status,
        attempts=job.attempts,
        sent_at=(job.started_at or stamp) if status == "sent" else None,
        last_error=error,
        recorded_at=stamp,
    )


def _template_problem(report: DeliveryReport, error: TemplateProblem) -> None:
    if report.template_errors == 0:
        log.error("mail left pending: %s", error)  # once per run, not once per message
    report.template_errors += 1
    report.last_error = str(error)


def atomic_write(path: Path, payload: bytes) -> None:
    """Write `path` via a temporary file and a rename: a reader never sees half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(payload)
    os.replace(temporary, path)


def _write_eml(
    jobs: list[_Job],
    outbox_dir: Path,
    renderer: Renderer,
    recorder: _Recorder,
    report: DeliveryReport,
    now: Clock,
    after_send: Callable[[str], None] | None,
) -> None:
    """The embedded default: each message as `<outbox_dir>/<message_id>.eml`."""
    outbox_dir.mkdir(parents=True, exist_ok=True)
    for job in jobs:
        try:
            payload = _render(job, renderer, now)
        except TemplateProblem as error:
            _template_problem(report, error)
            continue
        except RenderError as error:
            recorder.add(_outcome(job, "failed", now, f"render: {error}"))
            report.failed += 1
            continue
        atomic_write(outbox_dir / f"{job.message_id}.eml", payload)
        job.attempts += 1
        if after_send:
            after_send(job.message_id)
        recorder.add(_outcome(job, "sent", now))
        report.sent += 1


class _ConnectFailed(Exception):
    """This worker could not reach the relay; it stops and leaves its job queued."""


class _SmtpDelivery:
    """One run of `connections` workers draining the due messages over reused connections."""

    def __init__(
        self,
        jobs: list[_Job],
        settings: SmtpSettings,
        sender: Sender,
        renderer: Renderer,
        recorder: _Recorder,
        report: DeliveryReport,
        *,
        limiter: RateLimiter | None,
        now: Clock,
        sleep: Sleep,
        after_send: Callable[[str], None] | None,
        deadline: float,
    ) -> None:
        self.jobs = jobs
        self.settings = settings
        self.sender = sender
        self.renderer = renderer
        self.recorder = recorder
        self.report = report
        self.limiter = limiter
        self.now = now
        self.sleep = sleep
        self.after_send = after_send
        self.deadline = deadline
        self.outstanding = len(jobs)
        self.fatal: str | None = None  # a configuration error: no worker should retry
        self.password = settings.resolve_password() if settings.username else None
        self.local_hostname = socket.gethostname()  # getfqdn() may wait on DNS
        self.tls_context = _tls_context(settings)

    async def run(self) -> None:
        """Send everything, or until no worker can reach the relay."""
        self.queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        for job in self.jobs:
            self.queue.put_nowait(job)
        self.done = asyncio.Event()
        self.timers: set[asyncio.Task[None]] = set()
        workers = {asyncio.create_task(self._worker()) for _ in range(self.report.connections)}
        flusher = asyncio.create_task(self._flush_periodically())
        finished = asyncio.create_task(self.done.wait())
        alive = set(workers)
        try:
            while alive and not self.done.is_set():
                ended, _ = await asyncio.wait(
                    alive | {finished}, return_when=asyncio.FIRST_COMPLETED
                )
                for task in ended & alive:
                    task.result()  # a worker's unexpected error ends the run, loudly
                alive -= ended
            for _ in alive:
                self.queue.put_nowait(None)  # let live workers QUIT politely
            await asyncio.gather(*alive)
        finally:
            for task in (*self.timers, *workers, flusher, finished):
                task.cancel()
            await asyncio.gather(*self.timers, *workers, flusher, finished, return_exceptions=True)
        self.report.unsent = self.outstanding

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.recorder.interval)
            self.recorder.flush()

    def _finish(self) -> None:
        self.outstanding -= 1
        if self.outstanding == 0:
            self.done.set()

    async def _worker(self) -> None:
        client: aiosmtplib.SMTP | None = None
        try:
            while (job := await self.queue.get()) is not None:
                if client is None or not client.is_connected:
                    try:
                        client = await self._connect()
                    except _ConnectFailed:
                        self.queue.put_nowait(job)  # not attempted: charge no attempt
                        return
                if self.limiter and not await self.limiter.acquire(self.deadline):
                    self.report.rate_limited += 1
                    self._finish()
                    continue
                if not await self._send(client, job):
                    client.close()  # the connection is unusable; the next job reconnects
        finally:
            if client is not None and client.is_connected:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                    await asyncio.wait_for(client.quit(), timeout=2.0)
                client.close()

    def _client(self) -> aiosmtplib.SMTP:
        settings = self.settings
        return aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.effective_port,
            username=settings.username if self.password is not None else None,
            password=self.password,
            local_hostname=self.local_hostname,
            timeout=settings.timeout,
            use_tls=settings.security is SmtpSecurity.TLS,
            start_tls=settings.security is SmtpSecurity.STARTTLS,
            tls_context=self.tls_context,
        )

    async def _connect(self) -> aiosmtplib.SMTP:
        """A connected (and logged-in) client, after up to `max_attempts` tries."""
        for attempt in range(1, self.settings.max_attempts + 1):
            if self.fatal:
                break
            client = self._client()
            try:
                await client.connect()
                return client
            except (aiosmtplib.SMTPAuthenticationError, ssl.SSLCertVerificationError) as error:
                self.fatal = self.report.last_error = f"connect: {_describe(error)}"
                log.error("mail relay refused this configuration: %s", self.fatal)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
                self.report.last_error = f"connect: {_describe(error)}"
                log.warning("mail relay unreachable (try %d): %s", attempt, self.report.last_error)
                if attempt < self.settings.max_attempts:
                    await self.sleep(self.settings.backoff(attempt))
            client.close()
        raise _ConnectFailed

    async def _send(self, client: aiosmtplib.SMTP, job: _Job) -> bool:
        """One attempt at one message; False when the connection must be replaced."""
        try:
            payload = _render(job, self.renderer, self.now)
        except TemplateProblem as error:  # the admins fix it; the message waits, uncharged
            _template_problem(self.report, error)
            self._finish()
            return True
        except RenderError as error:  # deterministic: retrying would fail the same way
            self._fail(job, f"render: {error}")
            return True
        recipient = str(job.row["recipient_email"])
        job.attempts += 1
        job.started_at = self.now()
        try:
            await client.sendmail(self.sender.address, [recipient], payload)
        except aiosmtplib.SMTPRecipientsRefused as error:
            refused = error.recipients[0]
            self._reply(job, refused.code, refused.message)
            return True
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError) as error:
            self._transient(job, f"connection lost: {_describe(error)}")
            return False
        except aiosmtplib.SMTPResponseException as error:
            self._reply(job, error.code, error.message)
            return error.code != 421  # 421: the server is closing this connection
        except (ValueError, aiosmtplib.SMTPNotSupported) as error:
            self._fail(job, f"address cannot be sent: {_describe(error)}")
            return True
        except OSError as error:
            self._transient(job, f"connection lost: {_describe(error)}")
            return False
        if self.after_send:
            self.after_send(job.message_id)
        self.recorder.add(_outcome(job, "sent", self.now))
        self.report.sent += 1
        self._finish()
        return True

    def _reply(self, job: _Job, code: int, message: str) -> None:
        text = f"{code} {' '.join(str(message).split())}"
        if 400 <= code < 500:
            self._transient(job, text)
        else:
            self._fail(job, text)

    def _fail(self, job: _Job, error: str) -> None:
        self.recorder.add(_outcome(job, "failed", self.now, error))
        self.report.failed += 1
        self._finish()

    def _transient(self, job: _Job, error: str) -> None:
        if job.attempts >= self.settings.max_attempts:
            self._fail(job, error)
            return
        self.recorder.add(_outcome(job, "pending", self.now, error))
        self.report.retried += 1
        timer = asyncio.create_task(self._requeue(job, self.settings.backoff(job.attempts)))
        self.timers.add(timer)
        timer.add_done_callback(self.timers.discard)

    async def _requeue(self, job: _Job, delay: float) -> None:
        await self.sleep(delay)
        self.queue.put_nowait(job)


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext | None:
    if settings.security is SmtpSecurity.NONE:
        return None
    context = ssl.create_default_context()
    if settings.ca_file:
        context.load_verify_locations(cafile=str(settings.ca_file))
    return context


def _describe(error: BaseException) -> str:
    """An error as one line (server replies and OS errors carry no secrets)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:500]


# ---------------------------------------------------------------------------------------
# Run alerts: plain mails to the data team, outside the outbox, once per alert key.


def build_alert(
    sender: Sender,
    recipients: Sequence[str],
    subject: str,
    body: str,
    alert_key: str,
    now: datetime,
) -> EmailMessage:
    """A plain-text run alert with a Message-ID derived from its key."""
    message = EmailMessage(policy=SMTP_POLICY)
    message["Subject"] = fold_subject(subject)
    message["From"] = make_address(sender.name, sender.address)
    message["To"] = [make_address("", address) for address in recipients]
    message["Date"] = format_datetime(now)
    message["Message-ID"] = f"<alert-{_alert_digest(alert_key)}@learnops>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body + "\n")
    return message


def _alert_digest(alert_key: str) -> str:
    return hashlib.sha256(alert_key.encode()).hexdigest()[:32]


def send_alert(
    paths: WarehousePaths,
    smtp_settings: SmtpSettings,
    sender: Sender,
    *,
    alert_key: str,
    recipients: Sequence[str],
    subject: str,
    body: str,
    now: Clock = utc_now,
    sleep: Sleep = asyncio.sleep,
) -> str:
    """Mail a run alert to `recipients` once per `alert_key`.

    Returns `sent`, `duplicate` (the ledger has this key), `no_recipients` or `failed`
    (after `max_attempts`; logged, never raised: an alert must not hide the run's own
    error). With no SMTP host the alert is written as `alert-<digest>.eml` in the outbox.
    """
    if not recipients:
        return "no_recipients"
    with Ledger(paths) as ledger:
        if ledger.alert_sent(alert_key):
            return "duplicate"
        message = build_alert(sender, recipients, subject, body, alert_key, now())
        if smtp_settings.uses_smtp:
            error = _run(_send_alert_smtp(message, recipients, smtp_settings, sender, sleep))
            if error:
                log.error("run alert %s not sent: %s", alert_key, error)
                return "failed"
        else:
            outbox = smtp_settings.outbox_path(paths)
            outbox.mkdir(parents=True, exist_ok=True)
            atomic_write(outbox / f"alert-{_alert_digest(alert_key)}.eml", message.as_bytes())
        ledger.record_alert(alert_key, now())
    return "sent"


async def _send_alert_smtp(
    message: EmailMessage,
    recipients: Sequence[str],
    settings: SmtpSettings,
    sender: Sender,
    sleep: Sleep,
) -> str | None:
    """Send one alert with retries; the last error, or None once sent."""
    password = settings.resolve_password() if settings.username else None
    error: str | None = None
    for attempt in range(1, settings.max_attempts + 1):
        client = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.effective_port,
            username=settings.username if password is not None else None,
            password=password,
            local_hostname=socket.gethostname(),
            timeout=settings.timeout,
            use_tls=settings.security is SmtpSecurity.TLS,
            start_tls=settings.security is SmtpSecurity.STARTTLS,
            tls_context=_tls_context(settings),
        )
        try:
            async with client:
                await client.sendmail(sender.address, list(recipients), message.as_bytes())
            return None
        except aiosmtplib.SMTPRecipientsRefused as failure:
            error = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in failure.recipients)
            if all(r.code >= 500 for r in failure.recipients):
                return error  # permanent: retrying would be refused the same way
        except aiosmtplib.SMTPResponseException as failure:
            error = f"{failure.code} {failure.message}"
            if failure.code >= 500:
                return error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as failure:
            error = _describe(failure)
        if attempt < settings.max_attempts:
            await sleep(settings.backoff(attempt))
    return error
