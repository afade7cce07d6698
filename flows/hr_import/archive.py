"""Content-addressed archive of every feed file a run reads (SPEC §3.4).

A file is stored zstd-compressed under its SHA-256, so an unchanged feed costs one hash on
the next run and no space. The warehouse records which run read which file
(``learnops.archive_file``), so any run can be replayed from the archive. Retention removes
files no run within the retention period read.

Hashing and compression release the GIL, so the importer runs them in worker threads
while it validates: a 1M-user organisation's 0.8 GB of completions compresses in the
shadow of the validation instead of after it.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import zstandard

_CHUNK = 1 << 22
_SUFFIX = ".zst"


@dataclass(frozen=True)
class ArchivedFile:
    sha256: str
    size_bytes: int
    stored_path: str  # relative to the archive directory


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in large chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def archive_file(source: Path, archive_dir: Path, sha256: str | None = None) -> ArchivedFile:
    """Store `source` once under its content hash; return where it lives."""
    sha = sha256 or file_sha256(source)
    relative = f"{sha[:2]}/{sha}{''.join(source.suffixes)}{_SUFFIX}"
    target = archive_dir / relative
    if target.exists():
        os.utime(target)  # retention counts from the last run that read it
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        compressor = zstandard.ZstdCompressor(level=3, threads=-1)
        with source.open("rb") as raw, partial.open("wb") as packed:
            compressor.copy_stream(raw, packed, read_size=_CHUNK, write_size=_CHUNK)
        partial.replace(target)  # never leave a half-written archive entry behind
    return ArchivedFile(sha256=sha, size_bytes=source.stat().st_size, stored_path=relative)


def restore_file(archive_dir: Path, stored_path: str, target: Path) -> None:
    """Write an archived file back, uncompressed, to `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    decompressor = zstandard.ZstdDecompressor()
    with (archive_dir / stored_path).open("rb") as packed, target.open("wb") as raw:
        decompressor.copy_stream(packed, raw, read_size=_CHUNK, write_size=_CHUNK)


def prune_archive(archive_dir: Path, retention_days: int, *, now: float | None = None) -> int:
    """Delete archived files no run has read for `retention_days`; return how many."""
    if not archive_dir.exists():
        return 0
    cutoff = (now or time.time()) - retention_days * 86_400
    removed = 0
    for path in archive_dir.glob(f"*/*{_SUFFIX}"):
        if path.stat().st_mtime < cutoff:
            path.unlink()
            removed += 1
    return removed
