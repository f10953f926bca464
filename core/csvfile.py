"""Reading CSV files with a header, for every importer (one place for encoding and header checks)."""

from __future__ import annotations

import csv
from pathlib import Path


def read_rows(path: Path, required: tuple[str, ...], error: type[Exception]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) pairs of a UTF-8 CSV file whose header names every required column.

    Raises:
        error: the file cannot be read, is not UTF-8, is not CSV, or lacks a required column
            (the message names the file and what is wrong).
    """
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                need = ", ".join(required)
                raise error(f"{path}: missing column(s) {', '.join(missing)}; the header needs {need}")
            return [(n, row) for n, row in enumerate(reader, start=2)]
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8: {exc}") from exc
    except (OSError, csv.Error) as exc:
        raise error(f"{path}: cannot read ({exc})") from exc
