"""Child process that runs math_verify/sympy for `rewards.sympy_sandbox`.

Protocol: one JSON object per line on stdin, one JSON reply per line on stdout. It prints
`{"ready": true}` once its imports are done. The parent kills it when a request runs past
its deadline, so nothing here needs a timeout of its own (and math_verify's signal-based
timeouts are switched off: they would only add overhead).
"""

from __future__ import annotations

import json
import logging
import os
import sys


def _answer(request: dict) -> dict:
    from math_verify import parse, verify

    op = request.get("op")
    if op == "verify":
        gold = parse(request["gold"], parsing_timeout=None)
        pred = parse(request["pred"], parsing_timeout=None)
        return {"ok": bool(gold and pred and verify(gold, pred, timeout_seconds=None))}
    if op == "number":
        parsed = parse(request["expr"], parsing_timeout=None)
        for item in parsed:
            if hasattr(item, "evalf"):
                try:
                    value = complex(item.evalf(30))
                except (TypeError, ValueError):
                    continue
                if value.imag == 0:
                    return {"value": value.real}
        return {"value": None}
    if op == "sleep":  # for tests of the hard timeout
        import time

        time.sleep(float(request["seconds"]))
        return {"ok": True}
    return {"error": f"unknown op {op!r}"}


def main() -> None:
    # Run as a script: drop rewards/ from the path so its modules cannot shadow others.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    logging.disable(logging.CRITICAL)
    import math_verify  # noqa: F401  (import before announcing readiness)

    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        try:
            reply = _answer(json.loads(line))
        except Exception as exc:  # a parse failure is a "no", never a dead worker
            reply = {"error": f"{type(exc).__name__}: {exc}"[:200]}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
