"""Random access to the records of one data file without holding them in memory.

    jsonl     one pass at open records where each non-empty line starts and ends (two int64
              per record: 16 bytes, 6 MB for 400K samples); a record is read back with one
              `os.pread` (no shared file offset, so forked data-loader workers read safely)
    parquet   HF `datasets` (memory-mapped Arrow: rows are read from the page cache, not the heap)
    json      one JSON document cannot be read in part: its records are held (use jsonl or
              parquet for large sets)

`where(i)` names a record for errors (`file:line`, `file:row i`, `file:item i`), as
`sail_rl.data.mathvista` does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from sail_rl.errors import DataError

INVALID_JSON_FIX = "write one JSON object per line"


class RecordFile:
    """`len(f)`, `f.read(i) -> record`, `f.where(i)`, `iter(f) -> (where, record)` in file order."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.kind = self.path.suffix.lower().lstrip(".")
        self._fd: tuple[int, int] | None = None  # (pid, fd): a descriptor opened in this process
        if self.kind == "jsonl":
            self._index_lines()
        elif self.kind == "parquet":
            import datasets  # heavy: only for parquet

            self._table = datasets.load_dataset("parquet", data_files=str(self.path), split="train")
        elif self.kind == "json":
            from sail_rl.data.mathvista import _read_records

            self._records = [rec for _, rec in _read_records(self.path)]
        else:
            raise DataError(f"{self.path}: unsupported data file type '.{self.kind}'; use .jsonl, .json or .parquet")

    def _index_lines(self) -> None:
        starts, ends, lines = [], [], []
        offset = 0
        with self.path.open("rb") as f:
            for lineno, line in enumerate(f, start=1):
                if line.strip():
                    starts.append(offset)
                    ends.append(offset + len(line))
                    lines.append(lineno)
                offset += len(line)
        self._starts, self._ends = np.asarray(starts, np.int64), np.asarray(ends, np.int64)
        self._lines = np.asarray(lines, np.int64)

    def __len__(self) -> int:
        if self.kind == "jsonl":
            return len(self._starts)
        return len(self._table) if self.kind == "parquet" else len(self._records)

    def line(self, i: int) -> int:
        """jsonl: the 1-based line number of record i."""
        return int(self._lines[i])

    def where(self, i: int) -> str:
        if self.kind == "jsonl":
            return f"{self.path}:{self.line(i)}"
        return f"{self.path}:row {i}" if self.kind == "parquet" else f"{self.path}:item {i}"

    def read(self, i: int) -> Any:
        if self.kind == "parquet":
            return dict(self._table[i])
        if self.kind == "json":
            return self._records[i]
        start, end = int(self._starts[i]), int(self._ends[i])
        raw = os.pread(self._descriptor(), end - start, start)
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DataError(f"{self.where(i)}: invalid JSON ({exc.msg}); {INVALID_JSON_FIX}") from None

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        if self.kind != "jsonl":
            for i in range(len(self)):
                yield self.where(i), self.read(i)
            return
        with self.path.open("rb") as f:  # sequential: one read per line, not one pread per record
            for lineno, line in enumerate(f, start=1):
                if line.strip():
                    try:
                        yield f"{self.path}:{lineno}", json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise DataError(f"{self.path}:{lineno}: invalid JSON ({exc.msg}); {INVALID_JSON_FIX}") from None

    def _descriptor(self) -> int:
        if self._fd is None or self._fd[0] != os.getpid():  # a forked worker opens its own
            self._fd = (os.getpid(), os.open(self.path, os.O_RDONLY))
        return self._fd[1]

    def __getstate__(self) -> dict:
        return dict(self.__dict__, _fd=None)
