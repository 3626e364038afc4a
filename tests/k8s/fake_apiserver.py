"""A fake Kubernetes API server over real HTTP: just the Job and Pod endpoints the launcher uses.

Lets the tests drive :class:`launcher.k8s.client.KubeClient`, and so the official client's real requests
(paths, query strings, JSON bodies, status codes), without a cluster and without mocking any HTTP library.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

JOBS = re.compile(r"^/apis/batch/v1/namespaces/([^/]+)/jobs(?:/([^/]+))?$")
PODS = re.compile(r"^/api/v1/namespaces/([^/]+)/pods(?:/([^/]+)(/log)?)?$")


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason,
            "message": message}


def _selected(obj: dict[str, Any], selector: str | None) -> bool:
    labels = obj["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, _, v in (t.partition("=") for t in filter(None, (selector or "").split(","))))


class FakeApiServer:
    def __init__(self) -> None:
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.logs: dict[tuple[str, str], str] = {}
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str) -> None:
                url = urllib.parse.urlparse(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                server.requests.append((method, self.path))
                body = None
                if method == "POST":
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                m = JOBS.match(url.path)
                if m:
                    return self._jobs(method, m.group(1), m.group(2), query, body)
                m = PODS.match(url.path)
                if m and method == "GET":
                    return self._pods(m.group(1), m.group(2), bool(m.group(3)), query)
                self._send(404, _status(404, "NotFound", f"no route {url.path}"))

            def _jobs(self, method: str, ns: str, name: str | None, query: dict, body: Any) -> None:
                if method == "POST":
                    key = (ns, body["metadata"]["name"])
                    if key in server.jobs:
                        return self._send(409, _status(409, "AlreadyExists", f'jobs.batch "{key[1]}" already exists'))
                    body["metadata"].update(namespace=ns, creationTimestamp="2026-01-01T00:00:00Z", uid="u-1")
                    server.jobs[key] = body
                    return self._send(201, body)
                if name is None:
                    sel = query.get("labelSelector")
                    items = [j for (n, _), j in server.jobs.items() if n == ns and _selected(j, sel)]
                    return self._send(200, {"kind": "JobList", "apiVersion": "batch/v1", "metadata": {},
                                            "items": items})
                job = server.jobs.get((ns, name))
                if job is None:
                    return self._send(404, _status(404, "NotFound", f'jobs.batch "{name}" not found'))
                if method == "DELETE":
                    del server.jobs[(ns, name)]
                    return self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})
                return self._send(200, job)

            def _pods(self, ns: str, name: str | None, log: bool, query: dict) -> None:
                if name is None:
                    sel = query.get("labelSelector")
                    items = [p for (n, _), p in server.pods.items() if n == ns and _selected(p, sel)]
                    return self._send(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
                if log:
                    text = server.logs.get((ns, name))
                    if text is None:
                        return self._send(404, _status(404, "NotFound", f'pods "{name}" not found'))
                    lines = text.splitlines(keepends=True)
                    if "tailLines" in query:
                        lines = lines[-int(query["tailLines"]):]
                    return self._send(200, "".join(lines), "text/plain")
                return self._send(404, _status(404, "NotFound", "pod reads are not faked"))

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_DELETE(self) -> None:
                self._route("DELETE")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeApiServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def kubeconfig(self, context: str = "fake", namespace: str = "peftsum") -> str:
        """A kubeconfig (YAML text) with one context pointing at this server."""
        return json.dumps({"apiVersion": "v1", "kind": "Config", "current-context": context,
                           "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                           "users": [{"name": "fake", "user": {"token": "not-a-secret"}}],
                           "contexts": [{"name": context, "context": {"cluster": "fake", "user": "fake",
                                                                       "namespace": namespace}}]})
