"""A local stand-in for the Slack Web API: the real ``WebClient`` talks to it over HTTP (``base_url``)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


class SlackMock:
    """Records every Web API call (method, arguments) and answers like Slack does."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        mock = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                if "json" in (self.headers.get("Content-Type") or ""):
                    args = json.loads(raw or "{}")
                else:
                    args = {k: v[0] for k, v in parse_qs(raw).items()}
                body = json.dumps(mock.answer(self.path.rsplit("/", 1)[-1], args)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """Slack's reply to one call."""
        with self._lock:
            self.calls.append((method, args))
            n = len(self.calls)
        if method == "auth.test":
            return {"ok": True, "user_id": "UBOT", "bot_id": "BBOT", "team_id": "T1"}
        if method in {"chat.postMessage", "chat.update"}:
            return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts") or f"1700000000.{n:06d}"}
        return {"ok": True}

    def called(self, method: str) -> list[dict[str, Any]]:
        """The arguments of every call of ``method`` so far."""
        with self._lock:
            return [a for m, a in self.calls if m == method]

    def wait_for(
        self, method: str, count: int, timeout: float = 10.0, where: Callable[[dict[str, Any]], bool] | None = None
    ) -> list[dict[str, Any]]:
        """Wait until ``method`` was called ``count`` times (those matching ``where``, if given)."""
        deadline = time.monotonic() + timeout

        def matching() -> list[dict[str, Any]]:
            return [a for a in self.called(method) if where is None or where(a)]

        while len(matching()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return matching()

    def close(self) -> None:
        """Stop the server."""
        self.server.shutdown()
        self.server.server_close()
