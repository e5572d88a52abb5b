"""A real HTTP server on 127.0.0.1 that speaks ``POST /v1/chat/completions`` and fails on demand.

Used by the teacher tests (and reusable by any test that needs an OpenAI-compatible endpoint)::

    with FakeOpenAI() as server:
        server.script(["429", "ok"])             # the next requests, in order (then "ok")
        server.script_for("polar bears", ["500"])  # requests whose prompt contains a text
        client = OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        ...
        server.requests  # the request log: one dict per request, with the action taken

Actions (strings; ``"429:2.5"`` sets Retry-After to 2.5 seconds):

* ``ok``        200 with a chat completion whose content names the claim it answers; when the
  request's ``max_tokens`` / ``max_completion_tokens`` is below the answer's length in words, the
  answer is cut to that many words with ``finish_reason: "length"`` (one word = one token here)
* ``429[:s]``   rate limited, ``Retry-After: s`` (default 0.1)
* ``500``, ``502``, ``503``  server error
* ``401``, ``400``  client errors (their bodies echo the Authorization header, as a careless
  server might, so tests can check the key never leaks from the client side)
* ``hang[:s]``  sleep ``s`` seconds (default 30, cut short on shutdown) before answering ``ok``
* ``drop``      read the request, then close the socket without any response
* ``malformed`` 200 with a body that is not JSON
* ``empty``     200 with an empty assistant message
* ``nochoices`` 200 with a JSON body without ``choices``
* ``filter``    200 with an empty message and ``finish_reason: "content_filter"``
* ``400filter`` 400 whose error ``code`` is ``content_filter`` (Azure's prompt filter)
* ``detail``    400 with a FastAPI-style body ``{"detail": "..."}`` naming the model asked for
  (as ``transformers serve`` answers an unknown model), echoing the Authorization header
* ``422``       422 with FastAPI validation errors (``{"detail": [{"loc", "msg", "type"}]}``)
* ``text``      400 with a long plain-text (not JSON) body

* ``say:TEXT``  200 with ``TEXT`` as the assistant message (e.g. a judge's answer)

``delay`` (seconds) is slept before every answer, to keep requests in flight. ``answer`` (a
function of the request's messages) writes the content of ``ok`` answers (default
:func:`explanation_for`), e.g. an LLM judge's ``Score: 4`` / ``Reason: ...``.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeOpenAI", "explanation_for"]

_CLAIM = re.compile(r"\[Claim\]:\s*(.*)")


def explanation_for(messages: list[dict[str, Any]]) -> str:
    """The deterministic explanation the fake server gives for a prompt (names the claim)."""
    claim = claim_of(messages)
    return f"Because of the evidence, the claim '{claim}' follows. The cause leads to the effect."


def claim_of(messages: list[dict[str, Any]]) -> str:
    """The ``[Claim]: ...`` line of the last user message ('' when absent)."""
    for m in reversed(messages):
        if m.get("role") == "user":
            found = _CLAIM.search(str(m.get("content", "")))
            return found.group(1).strip() if found else ""
    return ""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr access log
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        body = {"error": {"message": message, "type": "fake_error", "code": status}}
        self._send(status, json.dumps(body).encode(), headers)

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            payload = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            payload = {}
        messages = payload.get("messages") or []
        action = owner._next_action(messages)
        entry = {
            "n": None,
            "time": time.time(),
            "path": self.path,
            "action": action,
            "model": payload.get("model"),
            "messages": messages,
            "claim": claim_of(messages),
            "temperature": payload.get("temperature"),
            "seed": payload.get("seed"),
            "max_tokens": payload.get("max_completion_tokens") or payload.get("max_tokens"),
            "authorization": self.headers.get("Authorization") or self.headers.get("api-key"),
        }
        owner._log(entry)
        if not self.path.split("?")[0].rstrip("/").endswith("/chat/completions"):
            self._error(404, f"no route {self.path}")
            return
        if owner.delay:
            owner._stop.wait(owner.delay)
        kind, _, arg = action.partition(":")
        if kind == "drop":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if kind == "hang":
            owner._stop.wait(float(arg or 30))
            kind = "ok"
        if kind == "429":
            self._error(429, "Rate limit reached; slow down", {"Retry-After": arg or "0.1"})
        elif kind in ("500", "502", "503"):
            self._error(int(kind), "The server had an error while processing your request")
        elif kind == "401":
            self._error(401, f"Incorrect API key provided: {self.headers.get('Authorization')}")
        elif kind == "400":
            self._error(400, f"Bad request from {self.headers.get('Authorization')}")
        elif kind == "400filter":
            body = {
                "error": {
                    "message": "The response was filtered due to the prompt triggering the "
                    "content management policy.",
                    "type": None,
                    "param": "prompt",
                    "code": "content_filter",
                    "status": 400,
                }
            }
            self._send(400, json.dumps(body).encode())
        elif kind == "400context":  # OpenAI's words and code for a prompt past the window
            body = {
                "error": {
                    "message": "This model's maximum context length is 8192 tokens. However, "
                    "your messages resulted in 9013 tokens. Please reduce the length of the "
                    "messages.",
                    "type": "invalid_request_error",
                    "param": "messages",
                    "code": "context_length_exceeded",
                }
            }
            self._send(400, json.dumps(body).encode())
        elif kind == "detail":
            detail = (
                f"Server is pinned to 'tiny'; requested {payload.get('model')!r}. "
                f"(auth: {self.headers.get('Authorization')})"
            )
            self._send(400, json.dumps({"detail": detail}).encode())
        elif kind == "422":
            detail = [
                {"loc": ["body", "temperature"], "msg": "Input should be <= 2", "type": "le"},
                {"loc": ["body", "seed"], "msg": "Input should be an integer", "type": "int"},
            ]
            self._send(422, json.dumps({"detail": detail}).encode())
        elif kind == "text":
            self._send(400, ("upstream said no: " + "x" * 1000).encode())
        elif kind == "malformed":
            body = b'{"id": "chatcmpl-x", "choices": [{"message": {"content": "trunc'
            self._send(200, body)
        else:
            if kind in ("empty", "filter"):
                content = ""
            elif kind == "say":
                content = arg
            else:
                content = owner.answer(messages)
            finish = "content_filter" if kind == "filter" else "stop"
            limit = payload.get("max_completion_tokens") or payload.get("max_tokens")
            if isinstance(limit, int) and len(content.split()) > limit:
                content, finish = " ".join(content.split()[:limit]), "length"
            completion = {
                "id": f"chatcmpl-{entry['n']}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": f"{payload.get('model')}-0613",
                "system_fingerprint": "fp_fake123",
                "usage": {
                    "prompt_tokens": sum(len(str(m.get("content", "")).split()) for m in messages),
                    "completion_tokens": len(content.split()),
                    "total_tokens": sum(len(str(m.get("content", "")).split()) for m in messages)
                    + len(content.split()),
                },
            }
            if kind != "nochoices":
                completion["choices"] = [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": finish,
                        "logprobs": None,
                    }
                ]
            self._send(200, json.dumps(completion).encode(), {"x-request-id": f"req_{entry['n']}"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: FakeOpenAI

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up makes the late answer fail: expected, stay quiet.
        import sys

        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class FakeOpenAI:
    """Threaded chat-completions server on ``127.0.0.1:<free port>``; a context manager."""

    def __init__(self, delay: float = 0.0, answer: Any = None):
        self.delay = delay
        self.answer = answer or explanation_for
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._queue: deque[str] = deque()
        self._rules: list[tuple[str, deque[str]]] = []
        self._stop = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, actions: list[str]) -> None:
        """Queue actions for the next requests (any prompt), in order; afterwards ``ok``."""
        with self._lock:
            self._queue.extend(actions)

    def script_for(self, text: str, actions: list[str]) -> None:
        """Queue actions for requests whose messages contain ``text`` (checked before :meth:`script`)."""
        with self._lock:
            self._rules.append((text, deque(actions)))

    def _next_action(self, messages: list[dict[str, Any]]) -> str:
        blob = json.dumps(messages, ensure_ascii=False)
        with self._lock:
            for text, queue in self._rules:
                if queue and text in blob:
                    return queue.popleft()
            return self._queue.popleft() if self._queue else "ok"

    def _log(self, entry: dict[str, Any]) -> None:
        with self._lock:
            entry["n"] = len(self.requests)
            self.requests.append(entry)

    def actions(self) -> list[str]:
        """The action taken for each request so far, in arrival order."""
        with self._lock:
            return [r["action"] for r in self.requests]


if __name__ == "__main__":  # a standalone server for the subprocess tests and manual trials
    import argparse
    import sys

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--script", default="", help="comma-separated actions for the first requests")
    ns = ap.parse_args()
    srv = FakeOpenAI(delay=ns.delay)
    if ns.script:
        srv.script(ns.script.split(","))
    srv.start()
    print(srv.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()
        sys.exit(0)
