"""Read one feed file into a table of text cells, with the line each record starts on.

Every cell is read as text: validation (pandera) decides what a value means, and the raw
row is kept verbatim for ``import_reject``. Problems that make a whole file unusable (binary
content, wrong encoding, wrong delimiter, a truncated last record) raise
:class:`FeedFileError` with one sentence naming the file and what to do. Records with the
wrong number of fields are *row* problems: they come back in :attr:`FeedTable.malformed`.

CSV takes a fast path (polars' reader) when the file has no quote characters, so line N of
the file is record N-1; otherwise Python's csv module walks it and tracks the line each
record starts on (quoted values may span lines).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

LINE_COLUMN = "_line"
"""Column holding the file line where each record starts (header = line 1)."""

_BINARY_SNIFF_BYTES = 8192
_LIKELY_DELIMITERS = {"\t": "TAB", ";": "';'", "|": "'|'", ",": "','"}


class FeedFileError(Exception):
    """A feed file cannot be read at all; the message says which file and what to do."""

    def __init__(self, file: Path, code: str, message: str) -> None:
        super().__init__(f"{file.name}: {message}")
        self.file = file
        self.code = code


@dataclass
class MalformedRow:
    """A record whose field count differs from the header's."""

    line: int
    raw: dict[str, str]
    reason: str


@dataclass
class FeedTable:
    """The text cells of one feed file."""

    path: Path
    frame: pl.DataFrame  # all columns pl.String, plus LINE_COLUMN (Int64)
    malformed: list[MalformedRow] = field(default_factory=list)


@dataclass(frozen=True)
class CsvOptions:
    """How a CSV file is encoded."""

    delimiter: str = ","
    encoding: str = "utf-8"
    quote_char: str = '"'


def read_feed(path: Path, csv_options: CsvOptions | None = None) -> FeedTable:
    """Read a CSV, Parquet or JSON Lines feed file (chosen by extension) as text cells."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _read_parquet(path)
    if suffix in {".jsonl", ".ndjson"}:
        return _read_jsonl(path)
    return _read_csv(path, csv_options or CsvOptions())


# --- CSV ---------------------------------------------------------------------------------


def _read_csv(path: Path, options: CsvOptions) -> FeedTable:
    data = path.read_bytes()
    table = _read_csv_fast(path, data, options)
    if table is not None:
        return table
    text = _decode(path, data, options.encoding)
    if not text.strip():
        raise FeedFileError(path, "file.empty", "the file is empty: it needs at least a header row")
    header_line, _, _ = text.partition("\n")
    header = _parse_header(path, header_line.rstrip("\r"), options)
    return _read_csv_exact(path, text, header, options)


def _read_csv_fast(path: Path, data: bytes, options: CsvOptions) -> FeedTable | None:
    """Parse a plain UTF-8 CSV straight from bytes with polars; None if it is not plain.

    Plain means: no quote characters, no CR, no blank lines, and exactly one delimiter
    fewer than the header's columns on every line. Then line N of the file is record
    N - 1, and the check is three byte counts plus polars refusing over-long rows: the
    delimiter total can only match when no line is short. Anything else goes the exact way.
    """
    if codecs.lookup(options.encoding).name != "utf-8":
        return None
    data = data.removeprefix(codecs.BOM_UTF8)
    delimiter = options.delimiter.encode()
    if (
        not data.strip()
        or data.startswith(b"\n")
        or any(marker in data for marker in (b"\x00", b"\r", b"\n\n", options.quote_char.encode()))
    ):
        return None
    first_line = data.split(b"\n", 1)[0]
    try:
        header = _parse_header(path, first_line.decode("utf-8"), options)
    except UnicodeDecodeError:
        return None
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    if data.count(delimiter) != (len(header) - 1) * lines:
        return None
    try:
        frame = pl.read_csv(
            data,
            separator=options.delimiter,
            quote_char=None,
            infer_schema=False,
            empty_string_is_null=False,
            truncate_ragged_lines=False,
            new_columns=header,
        )
    except pl.exceptions.PolarsError:
        return None  # e.g. invalid UTF-8: the exact reader names the line
    if frame.height != lines - 1:
        return None
    frame = frame.with_columns(pl.int_range(2, frame.height + 2, dtype=pl.Int64).alias(LINE_COLUMN))
    return FeedTable(path=path, frame=frame)


def _decode(path: Path, data: bytes, encoding: str) -> str:
    try:
        wide = codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))
    except LookupError:
        raise FeedFileError(
            path, "file.encoding", f"unknown encoding '{encoding}' in csv.encoding"
        ) from None
    # UTF-16/32 text is full of NUL bytes; any other text never holds one.
    if not wide and b"\x00" in data[:_BINARY_SNIFF_BYTES]:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise FeedFileError(
                path,
                "file.encoding",
                "the file is UTF-16 text (it starts with a UTF-16 byte-order mark); set "
                "csv.encoding: utf-16 for this element or save the file as UTF-8",
            )
        raise _binary(path)
    try:
        text = codecs.decode(data, encoding)
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise FeedFileError(
            path,
            "file.encoding",
            f"line {line} is not valid {encoding} (byte 0x{data[err.start]:02x}); save the "
            f"file as UTF-8 or set csv.encoding for this element (e.g. cp1252 or latin-1)",
        ) from None
    if "\x00" in text:
        raise _binary(path)
    return text.removeprefix("\ufeff").replace("\r\n", "\n")


def _binary(path: Path) -> FeedFileError:
    return FeedFileError(
        path,
        "file.binary",
        "this is not a text file (it contains NUL bytes); export the feed as CSV text "
        "or name it .parquet if it is a Parquet file",
    )


def _parse_header(path: Path, header_line: str, options: CsvOptions) -> list[str]:
    header = next(csv.reader([header_line], delimiter=options.delimiter))
    names = [name.strip() for name in header]
    if len(names) == 1:
        configured = _LIKELY_DELIMITERS.get(options.delimiter, repr(options.delimiter))
        for delimiter, label in _LIKELY_DELIMITERS.items():
            if delimiter != options.delimiter and delimiter in names[0]:
                raise FeedFileError(
                    path,
                    "file.delimiter",
                    f"the header has one column {names[0][:60]!r}: the file looks delimited "
                    f"by {label}, not {configured}; set csv.delimiter for this element in "
                    f"rules/hr_import.yaml",
                )
    seen: set[str] = set()
    for name in names:
        if not name:
            raise FeedFileError(path, "file.header", "the header has an empty column name")
        if name in seen:
            raise FeedFileError(path, "file.header", f"the header names column '{name}' twice")
        seen.add(name)
    return names


def _read_csv_exact(path: Path, text: str, header: list[str], options: CsvOptions) -> FeedTable:
    """Walk the file with Python's csv module, tracking where each record starts."""
    reader = csv.reader(
        io.StringIO(text), delimiter=options.delimiter, quotechar=options.quote_char, strict=True
    )
    columns: list[list[str]] = [[] for _ in header]
    line_numbers: list[int] = []
    malformed: list[MalformedRow] = []
    ends_with_newline = text.endswith("\n")
    try:
        next(reader)  # header, parsed already
        start = reader.line_num + 1
        for record in reader:
            if record and len(record) != len(header):
                is_last = reader.line_num == text.count("\n") + (0 if ends_with_newline else 1)
                if is_last and not ends_with_newline and len(record) < len(header):
                    raise FeedFileError(
                        path,
                        "file.truncated",
                        f"the last record (line {start}) has {len(record)} of {len(header)} "
                        f"fields and no line end: the file looks truncated; export it again",
                    )
                malformed.append(
                    MalformedRow(
                        line=start,
                        raw=_raw_dict(header, record),
                        reason=f"the row has {len(record)} fields but the header has "
                        f"{len(header)}; check for an unquoted delimiter in a value",
                    )
                )
            elif record:
                for column, value in zip(columns, record, strict=True):
                    column.append(value)
                line_numbers.append(start)
            start = reader.line_num + 1
    except csv.Error as err:
        raise FeedFileError(
            path,
            "file.truncated",
            f"cannot parse the record starting at line {start} ({err}): a quoted value is "
            f"never closed, so the file looks truncated or mis-quoted; export it again",
        ) from None
    frame = pl.DataFrame(
        {
            name: pl.Series(name, values, dtype=pl.String)
            for name, values in zip(header, columns, strict=True)
        }
        | {LINE_COLUMN: pl.Series(LINE_COLUMN, line_numbers, dtype=pl.Int64)}
    )
    return FeedTable(path=path, frame=frame, malformed=malformed)


def _raw_dict(header: list[str], record: list[str]) -> dict[str, str]:
    raw = {name: value for name, value in zip(header, record, strict=False)}
    for extra, value in enumerate(record[len(header) :], start=1):
        raw[f"_extra_{extra}"] = value
    return raw


# --- Parquet and JSON Lines --------------------------------------------------------------


def _read_parquet(path: Path) -> FeedTable:
    try:
        frame = pl.read_parquet(path)
    except Exception as err:  # polars raises several types for a damaged file
        raise FeedFileError(
            path,
            "file.unreadable",
            f"not a readable Parquet file ({type(err).__name__}); export it again",
        ) from None
    return FeedTable(path=path, frame=_as_text(frame, first_line=1))


def _read_jsonl(path: Path) -> FeedTable:
    text = _decode(path, path.read_bytes(), "utf-8")
    records: list[dict[str, object]] = []
    line_numbers: list[int] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise FeedFileError(
                path, "file.json", f"line {number} is not valid JSON ({err.msg}); fix or re-export"
            ) from None
        if not isinstance(record, dict):
            raise FeedFileError(path, "file.json", f"line {number} is not a JSON object")
        records.append(record)
        line_numbers.append(number)
    names = list(dict.fromkeys(key for record in records for key in record))
    columns = {
        name: pl.Series(name, [_json_text(r.get(name)) for r in records], dtype=pl.String)
        for name in names
    }
    frame = pl.DataFrame(columns).with_columns(pl.Series(LINE_COLUMN, line_numbers, dtype=pl.Int64))
    return FeedTable(path=path, frame=frame)


def _json_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def _as_text(frame: pl.DataFrame, first_line: int) -> pl.DataFrame:
    """Cast every column to text (null -> empty) and number the rows from first_line."""
    frame = frame.with_columns(pl.col(name).cast(pl.String).fill_null("") for name in frame.columns)
    return frame.with_columns(
        pl.int_range(first_line, frame.height + first_line, dtype=pl.Int64).alias(LINE_COLUMN)
    )
