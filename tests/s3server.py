"""A real S3 HTTP server for the tests (moto's ThreadedMotoServer), and a fault-injecting proxy in front of it.

The proxy forwards every request to moto byte for byte, except that it answers the first ``fail_next`` requests
matching ``fail_when`` with an HTTP error itself, as a flaky load balancer or an overloaded S3 would: boto3's
real retry logic sees real 5xx responses over the wire, nothing inside boto3 is mocked.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Stop a server process the tests started: SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class Faults:
    """How many upcoming requests matching ``when(method, path)`` the proxy fails, and with which status."""

    fail_next: int = 0
    every: int = 0  # also fail every N-th matching request (a flaky link), 0 = off
    status: int = 503
    when: Callable[[str, str], bool] = lambda method, path: True
    injected: list[tuple[str, str, int]] = field(default_factory=list)
    seen: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, method: str, path: str) -> int | None:
        with self.lock:
            if not self.when(method, path):
                return None
            self.seen += 1
            if self.fail_next > 0 or (self.every and self.seen % self.every == 0):
                self.fail_next = max(0, self.fail_next - 1)
                self.injected.append((method, path, self.status))
                return self.status
        return None


def start_proxy(upstream_port: int, faults: Faults) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status = faults.take(self.command, self.path)
            if status is not None:
                payload = (f"<?xml version='1.0'?><Error><Code>ServiceUnavailable</Code>"
                           f"<Message>injected {status}</Message></Error>").encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            headers["Host"] = f"127.0.0.1:{upstream_port}"
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            self.send_response(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                    self.send_header(k, v)
            # HEAD has no body: its Content-Length is the object's size, passed through as moto sent it
            length = resp.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data))
            self.send_header("Content-Length", length)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            conn.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
