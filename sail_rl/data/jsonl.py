"""Reading jsonl files with errors that name the file and line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sail_rl.errors import DataError


def read_jsonl(path: str | Path, fix: str = "write one JSON object per line") -> list[tuple[int, Any]]:
    """[(line number, parsed object)] for the non-empty lines of `path`.

    A line that is not JSON raises `DataError("FILE:LINE: invalid JSON (...); <fix>")`.
    """
    path = Path(path)
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append((lineno, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{lineno}: invalid JSON ({exc.msg}); {fix}") from None
    return out
