"""Run deliver_pending in a child process and kill it (os._exit) after N accepted messages.

Used by test_crash.py: os._exit skips every `finally`, so nothing buffered is committed,
exactly as when the machine or the process dies between a send and its record.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from flows.notify.deliver import deliver_pending
from flows.notify.render import Sender
from flows.notify.settings import SmtpSettings
from flows.warehouse import warehouse_paths


def main() -> None:
    warehouse, port, templates, crash_after, commit_every, connections = sys.argv[1:7]
    accepted = 0

    def crash_after_n(message_id: str) -> None:
        nonlocal accepted
        accepted += 1
        if accepted == int(crash_after):
            os._exit(17)  # a kill: no flush, no cleanup

    settings = SmtpSettings(
        host="127.0.0.1", port=int(port), security="none", connections=int(connections)
    )
    deliver_pending(
        warehouse_paths(Path(warehouse)),
        settings,
        Sender("learning@example.org"),
        templates_dir=Path(templates),
        commit_every=int(commit_every),
        commit_interval=3600.0,  # only the batch size decides when outcomes are committed
        after_send=crash_after_n,
    )


if __name__ == "__main__":
    main()
