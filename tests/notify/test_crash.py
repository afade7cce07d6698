"""A crash between sending and recording resends at most the in-flight window."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

from flows.notify.deliver import deliver_pending
from flows.notify.ledger import Ledger
from tests.notify.conftest import outbox_row, smtp_settings
from tests.notify.smtp_server import REPO_ROOT

COMMIT_EVERY, CONNECTIONS, CRASH_AFTER, MESSAGES = 5, 2, 23, 40


def test_crash_between_send_and_record_resends_at_most_the_window(
    paths, publish_outbox, handler, smtp_port, sender, templates_dir
):
    publish_outbox([outbox_row(n) for n in range(1, MESSAGES + 1)])

    child = subprocess.run(
        [sys.executable, "-m", "tests.notify.crash_sender", str(paths.published), str(smtp_port),
         str(templates_dir), str(CRASH_AFTER), str(COMMIT_EVERY), str(CONNECTIONS)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert child.returncode == 17, child.stderr
    with Ledger(paths) as ledger:
        recorded = len(ledger.outcomes())
    before_restart = len(handler.received)
    assert before_restart >= CRASH_AFTER
    assert recorded <= before_restart

    report = deliver_pending(
        paths, smtp_settings(smtp_port, connections=CONNECTIONS), sender,
        templates_dir=templates_dir, commit_every=COMMIT_EVERY,
    )  # fmt: skip

    counts = Counter(handler.message_ids())
    assert set(counts) == {f"<{n:032x}@learnops>" for n in range(1, MESSAGES + 1)}  # none lost
    resent = sum(c - 1 for c in counts.values())
    assert resent == before_restart - recorded  # exactly the unrecorded ones came again
    assert resent <= COMMIT_EVERY - 1 + CONNECTIONS  # the documented bound
    assert report.sent == MESSAGES - recorded
