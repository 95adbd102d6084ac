"""A local stand-in for the images API, for tests and benchmarks (no account, no network).

    with FakeImagesServer(latency=0.01, api_key="sk-test") as server:
        os.environ["OPENAI_API_KEY"] = "sk-test"
        ... -g base_url=server.base_url ...

It serves `POST /v1/images/variations` and `POST /v1/images/edits` (multipart, as the
official client sends them) on 127.0.0.1 and answers with the uploaded image mirrored
left-right at the requested size, so callers can check the round trip. Faults are
injected per request: 429 with Retry-After, 500, a dropped connection, a content-policy
400. Every request is recorded; `first_attempts` counts requests per Idempotency-Key
without the client's own retries, so a value above 1 is a task asked for twice.

The server stops by itself after `lifetime` seconds or `max_requests` requests, so a
test that forgets to stop it cannot hang a run.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import io
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from PIL import Image, ImageOps

POLICY_MESSAGE = "Your request was rejected as a result of our safety system."


@dataclass
class Faults:
    """Which requests fail, by 1-based request number (attempts, retries included)."""

    rate_limit: set[int] = field(default_factory=set)  # 429 with Retry-After
    server_error: set[int] = field(default_factory=set)  # 500
    drop: set[int] = field(default_factory=set)  # connection closed without an answer
    reject_keys: set[str] = field(default_factory=set)  # Idempotency-Keys refused by "policy"
    retry_after: float = 0.01  # seconds, sent in Retry-After
    quota_exhausted: bool = False  # every request: 429 insufficient_quota
    quota_after: int | None = None  # requests after this number: 429 insufficient_quota (a run cut short)


@dataclass
class Recorded:
    number: int
    path: str
    key: str
    retry_count: int
    fields: dict[str, str]
    image_size: tuple[int, int] | None
    image_mode: str | None
    status: int


class FakeImagesServer:
    def __init__(
        self,
        *,
        api_key: str = "sk-test-key",
        latency: float = 0.0,
        faults: Faults | None = None,
        echo_key_in_errors: bool = True,
        lifetime: float = 300.0,
        max_requests: int = 10_000,
        answer: Callable[[Image.Image, dict[str, str]], Image.Image] | None = None,
        answer_by_url: bool = False,
        port: int = 0,
    ) -> None:
        self.api_key = api_key
        self.latency = latency
        self.faults = faults or Faults()
        # Real servers echo (part of) a wrong key back; ours echoes all of it to test scrubbing.
        self.echo_key_in_errors = echo_key_in_errors
        self.lifetime = lifetime
        self.max_requests = max_requests
        self.answer = answer or (lambda image, fields: ImageOps.mirror(image))
        self.answer_by_url = answer_by_url  # ignore response_format=b64_json, as some servers do
        self.requests: list[Recorded] = []
        self.first_attempts: Counter[str] = Counter()
        self.images_served: Counter[str] = Counter()  # 200 answers per Idempotency-Key
        self.files: dict[int, bytes] = {}  # answers served by URL (response_format=url)
        self.port = port
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._count = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    # ---- lifecycle

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> "FakeImagesServer":
        handler = type("Handler", (_Handler,), {"api": self})
        self._server = _QuietServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.stopped.set()

    def __enter__(self) -> "FakeImagesServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ---- facts for tests

    @property
    def duplicates(self) -> int:
        """Tasks asked for more than once (not counting the client's retries of one request)."""
        return sum(count - 1 for count in self.first_attempts.values() if count > 1)

    @property
    def served_twice(self) -> int:
        """Tasks answered with an image more than once (what a user would pay for twice)."""
        return sum(count - 1 for count in self.images_served.values() if count > 1)

    def served(self) -> list[Recorded]:
        return [r for r in self.requests if r.status == 200]

    def stats(self) -> dict[str, int]:
        """What `GET /_stats` answers (for a server running in another process)."""
        return {"requests": len(self.requests), "served": len(self.served()), "asked_twice": self.duplicates,
                "served_twice": self.served_twice}

    # ---- one request (called by the handler)

    def handle(self, handler: "_Handler") -> None:
        with self._lock:
            self._count += 1
            number = self._count
        if number > self.max_requests:
            threading.Thread(target=self.stop, daemon=True).start()
            return handler.reply(503, {"error": {"message": "test server request limit reached", "code": None}})
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        key = handler.headers.get("Idempotency-Key", "")
        retry_count = int(handler.headers.get("x-stainless-retry-count") or 0)
        fields, image = _parse_multipart(handler.headers.get("Content-Type", ""), body)
        record = Recorded(number, handler.path, key, retry_count, fields,
                          image.size if image else None, image.mode if image else None, 0)
        with self._lock:
            self.requests.append(record)
            if retry_count == 0 and key:
                self.first_attempts[key] += 1
        if self.latency:
            time.sleep(self.latency)
        record.status = self._respond(handler, number, key, fields, image)
        if record.status == 200:
            with self._lock:
                self.images_served[key] += 1

    def _respond(self, handler: "_Handler", number: int, key: str, fields: dict[str, str], image) -> int:
        faults = self.faults
        if handler.path not in ("/v1/images/variations", "/v1/images/edits"):
            return handler.reply(404, _error(f"Invalid URL (POST {handler.path})", "invalid_request_error", None))
        auth = handler.headers.get("Authorization", "")
        if auth != f"Bearer {self.api_key}":
            given = auth.removeprefix("Bearer ")
            shown = given if self.echo_key_in_errors else "***"
            return handler.reply(401, _error(f"Incorrect API key provided: {shown}.", "invalid_request_error", "invalid_api_key"))
        if faults.quota_exhausted or (faults.quota_after is not None and number > faults.quota_after):
            return handler.reply(429, _error("You exceeded your current quota.", "insufficient_quota", "insufficient_quota"))
        if number in faults.drop:
            handler.drop()
            return 0
        if number in faults.rate_limit:
            return handler.reply(429, _error("Rate limit reached for images.", "requests", "rate_limit_exceeded"),
                                 headers={"Retry-After": str(faults.retry_after)})
        if number in faults.server_error:
            return handler.reply(500, _error("The server had an error processing your request.", "server_error", None))
        if image is None:
            return handler.reply(400, _error("'image' is a required property", "invalid_request_error", None))
        if key in faults.reject_keys:
            message = POLICY_MESSAGE + (f" (key {self.api_key})" if self.echo_key_in_errors else "")
            return handler.reply(400, _error(message, "invalid_request_error", "content_policy_violation"))
        side = int(str(fields.get("size", "1024x1024")).split("x")[0])
        answer = self.answer(image.convert("RGB"), fields).resize((side, side))
        buffer = io.BytesIO()
        answer.save(buffer, format="PNG")
        encoded = base64.b64encode(buffer.getvalue()).decode()
        if self.answer_by_url or (handler.path.endswith("variations") and fields.get("response_format", "url") == "url"):
            data = {"url": f"http://127.0.0.1:{handler.server.server_address[1]}/files/{number}.png"}
            with self._lock:
                self.files[number] = buffer.getvalue()
        else:
            data = {"b64_json": encoded}
        return handler.reply(200, {"created": int(time.time()), "data": [data]})


def _error(message: str, kind: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], Image.Image | None]:
    """Form fields and the uploaded image of a multipart/form-data body (stdlib email parser)."""
    if not content_type.startswith("multipart/form-data"):
        return {}, None
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict[str, str] = {}
    image = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if name in ("image", "image[]"):
            image = Image.open(io.BytesIO(payload))
            image.load()
        elif name:
            fields[name] = payload.decode("utf-8", "replace")
    return fields, image


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer (killed, timed out) is not worth a traceback."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    api: FakeImagesServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.api.handle(self)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/_stats":
            self.reply(200, self.api.stats())
            return
        number = self.path.removeprefix("/files/").removesuffix(".png")
        data = self.api.files.get(int(number)) if number.isdigit() else None
        if data is None:
            self.reply(404, _error("no such file", "invalid_request_error", None))
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def reply(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> int:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        return status

    def drop(self) -> None:
        """Close the connection without answering (the client sees a dropped connection)."""
        import socket

        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass


def main() -> None:
    """`python -m synthmed_openai.testing`: run the stand-in server on 127.0.0.1 and print its
    base URL; it serves until Ctrl-C, `--lifetime` seconds, or (with --until-stdin-closes)
    until the parent process closes its stdin."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("--api-key", default="sk-test-key", help="the key it accepts")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free port)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--lifetime", type=float, default=3600.0, help="stop after this many seconds")
    parser.add_argument("--until-stdin-closes", action="store_true", help="stop when stdin closes")
    args = parser.parse_args()
    server = FakeImagesServer(api_key=args.api_key, latency=args.latency, lifetime=args.lifetime, port=args.port)
    with server:
        print(server.base_url, flush=True)
        try:
            if args.until_stdin_closes:
                sys.stdin.read()
            else:
                server.stopped.wait(args.lifetime)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
