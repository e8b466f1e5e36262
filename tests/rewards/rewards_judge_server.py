"""A scripted OpenAI-compatible chat server on 127.0.0.1 for judge tests (not a test module)."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

# script(prompt_text, hit_number) -> (http_status, reply_text, delay_s)
Script = Callable[[str, int], tuple[int, str, float]]


class ScriptedJudge:
    """`images_per_request` records the images each request carried; `accept_images=False` answers a
    request with images HTTP 400, as a text-only vLLM server does."""

    def __init__(self, script: Script, accept_images: bool = True) -> None:
        self.script = script
        self.accept_images = accept_images
        self.images_per_request: list[int] = []
        self.hits = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.prompts: list[str] = []
        self._lock = threading.Lock()
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                content = body["messages"][0]["content"]
                prompt = content if isinstance(content, str) else content[0]["text"]
                n_images = 0 if isinstance(content, str) else sum(p.get("type") == "image_url" for p in content)
                with judge._lock:
                    judge.images_per_request.append(n_images)
                    judge.hits += 1
                    hit = judge.hits
                    judge.in_flight += 1
                    judge.max_in_flight = max(judge.max_in_flight, judge.in_flight)
                    judge.prompts.append(prompt)
                try:
                    status, reply, delay_s = judge.script(prompt, hit)
                    if n_images and not judge.accept_images:
                        status, reply, delay_s = 400, "this model is not multimodal: image input is not supported", 0.0
                    time.sleep(delay_s)
                    data = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with judge._lock:
                        judge.in_flight -= 1

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> "ScriptedJudge":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
