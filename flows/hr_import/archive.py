"""Content-addressed archive of every feed file a run reads (SPEC §3.4).

A file is stored gzip-compressed under its SHA-256, so an unchanged feed costs nothing on
the next run. The warehouse records which run read which file (``learnops.archive_file``),
so any run can be replayed from the archive. Retention removes files no run within the
retention period read.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ArchivedFile:
    sha256: str
    size_bytes: int
    stored_path: str  # relative to the archive directory


def archive_file(source: Path, archive_dir: Path) -> ArchivedFile:
    """Store `source` once under its content hash; return where it lives."""
    digest = hashlib.sha256()
    with source.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    sha = digest.hexdigest()
    relative = f"{sha[:2]}/{sha}{''.join(source.suffixes)}.gz"
    target = archive_dir / relative
    if target.exists():
        os.utime(target)  # retention counts from the last run that read it
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        with source.open("rb") as raw, gzip.open(partial, "wb", compresslevel=6) as packed:
            shutil.copyfileobj(raw, packed, 1 << 20)
        partial.replace(target)  # never leave a half-written archive entry behind
    return ArchivedFile(sha256=sha, size_bytes=source.stat().st_size, stored_path=relative)


def restore_file(archive_dir: Path, stored_path: str, target: Path) -> None:
    """Write an archived file back, uncompressed, to `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(archive_dir / stored_path, "rb") as packed, target.open("wb") as raw:
        shutil.copyfileobj(packed, raw, 1 << 20)


def prune_archive(archive_dir: Path, retention_days: int, *, now: float | None = None) -> int:
    """Delete archived files no run has read for `retention_days`; return how many."""
    if not archive_dir.exists():
        return 0
    cutoff = (now or time.time()) - retention_days * 86_400
    removed = 0
    for path in archive_dir.glob("*/*.gz"):
        if path.stat().st_mtime < cutoff:
            path.unlink()
            removed += 1
    return removed
