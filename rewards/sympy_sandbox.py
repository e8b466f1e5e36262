"""Run math_verify/sympy in child processes with a hard wall-clock limit.

Why: sympy can hang on adversarial answers (`9^{9^{9^{9}}}`, deeply nested brackets), and
math_verify's own timeout uses `signal.alarm`, which only works in the main thread. Graders
run in worker threads (ScoringPool, the judge's event loop), so the expensive part runs in
a small pool of long-lived child processes (`rewards/_sympy_worker.py`); a request past its
deadline kills its child, and a fresh one is started for the next request.

Plain `subprocess` pipes, not `multiprocessing`: that works inside daemonic pool workers
and Ray actors too, and never forks a parent that holds threads.

    >>> SympySandbox.shared().verify("$\\\\frac{1}{2}$", "$0.5$", timeout_s=5.0)
    True
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

# A child that cannot import math_verify within this many seconds is treated as broken.
_STARTUP_TIMEOUT_S = 60.0
_WORKER_SCRIPT = str(Path(__file__).resolve().with_name("_sympy_worker.py"))


class _Child:
    """One worker process and its read buffer."""

    def __init__(self) -> None:
        # Run as a script, not `-m rewards...`: importing the package would import sail_rl.
        self.proc = subprocess.Popen(
            [sys.executable, _WORKER_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._buffer = b""
        ready = self.read(time.monotonic() + _STARTUP_TIMEOUT_S)
        if not ready or not ready.get("ready"):
            self.kill()
            raise RuntimeError("math_verify worker process did not start")

    def read(self, deadline: float) -> dict | None:
        """One JSON line from the child, or None past `deadline` (monotonic seconds)."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:  # the child died
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def ask(self, request: dict, timeout_s: float) -> dict | None:
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        return self.read(time.monotonic() + timeout_s)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


class SympySandbox:
    """A pool of at most `max_children` math_verify processes, shared by threads."""

    _shared: "SympySandbox | None" = None
    _shared_pid = -1  # a forked child must not share its parent's pipes
    _shared_lock = threading.Lock()

    def __init__(self, max_children: int = 2) -> None:
        self.max_children = max_children
        self._idle: list[_Child] = []
        self._started = 0
        self._cond = threading.Condition()
        self.kills = 0  # requests that ran past their deadline

    @classmethod
    def shared(cls) -> "SympySandbox":
        """The process-wide sandbox (size from SAIL_RL_GRADER_PROCESSES, default 2)."""
        with cls._shared_lock:
            if cls._shared is None or cls._shared_pid != os.getpid():
                cls._shared = cls(int(os.environ.get("SAIL_RL_GRADER_PROCESSES", "2")))
                cls._shared_pid = os.getpid()
            return cls._shared

    def _acquire(self) -> _Child:
        with self._cond:
            while not self._idle and self._started >= self.max_children:
                self._cond.wait()
            if self._idle:
                return self._idle.pop()
            self._started += 1
        try:
            return _Child()
        except Exception:
            with self._cond:
                self._started -= 1
                self._cond.notify()
            raise

    def _release(self, child: _Child, healthy: bool) -> None:
        if not healthy:
            child.kill()
        with self._cond:
            if healthy:
                self._idle.append(child)
            else:
                self._started -= 1
            self._cond.notify()

    def request(self, request: dict, timeout_s: float) -> dict | None:
        """Send one request; None when it ran past `timeout_s` (its child is then killed).

        The time to start a child (first use, or after a kill) is not counted in `timeout_s`.
        """
        child = self._acquire()
        reply = child.ask(request, timeout_s)
        if reply is None:
            self.kills += 1
        self._release(child, healthy=reply is not None)
        return reply

    def verify(self, gold: str, pred: str, timeout_s: float) -> bool:
        """math_verify's `verify(parse(gold), parse(pred))`; False on timeout or error."""
        reply = self.request({"op": "verify", "gold": gold, "pred": pred}, timeout_s)
        return bool(reply and reply.get("ok"))

    def number(self, expr: str, timeout_s: float) -> float | None:
        """The real value of a LaTeX/plain expression (`\\frac{1}{3}` -> 0.333...), or None."""
        reply = self.request({"op": "number", "expr": expr}, timeout_s)
        return None if not reply else reply.get("value")

    def close(self) -> None:
        with self._cond:
            for child in self._idle:
                child.kill()
            self._started -= len(self._idle)
            self._idle.clear()
