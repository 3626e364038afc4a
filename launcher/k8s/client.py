"""The one module that talks to Kubernetes: a thin wrapper around the official Python client.

Everything else in ``launcher.k8s`` depends on the :class:`KubeApi` protocol, never on ``kubernetes`` (import-linter
enforces it), and exchanges plain dicts shaped like the API's JSON (``metadata.creationTimestamp``,
``status.conditions[].type``): responses are read with ``_preload_content=False`` and parsed as JSON, so fixtures
copied from ``kubectl get -o json`` and the objects the launcher renders have one shape. Tests replace this module
with a fake of :class:`KubeApi` (``tests/k8s/fake_kube.py``) and exercise :class:`KubeClient` itself against a
fake API server over real HTTP.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any, Protocol


class KubeError(Exception):
    """An API call failed. ``status`` is the HTTP status (409 conflict, 403 forbidden…), or None."""

    def __init__(self, message: str, status: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class KubeUnreachable(KubeError):
    """No kube context could be loaded, or the API server did not answer."""


class KubeApi(Protocol):
    """What the launcher needs from a cluster, in one namespace. Objects are API-shaped dicts."""

    namespace: str

    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a Job; KubeError with status 409 if one of that name exists."""

    def get_job(self, name: str) -> dict[str, Any] | None:
        """The Job, or None if there is none."""

    def list_jobs(self, selector: str) -> list[dict[str, Any]]:
        """Jobs matching a label selector."""

    def delete_job(self, name: str) -> bool:
        """Delete a Job and (in the background) its pods; False if it did not exist."""

    def list_pods(self, selector: str) -> list[dict[str, Any]]:
        """Pods matching a label selector."""

    def pod_log(self, pod: str, container: str | None = None, tail: int | None = None,
                follow: bool = False) -> Iterator[str]:
        """The pod's log, line by line (following it while the container runs when ``follow``)."""


class KubeClient:
    """:class:`KubeApi` over the official ``kubernetes`` client (kubeconfig context, or in-cluster config)."""

    def __init__(self, namespace: str, context: str | None = None) -> None:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        try:  # KUBECONFIG read now: the client reads it once at import, too early for a long-lived process
            config.load_kube_config(config_file=os.environ.get("KUBECONFIG") or None, context=context)
        except (ConfigException, OSError) as err:
            if context:
                raise KubeUnreachable(f"cannot load kube context {context!r}: {err}") from None
            try:
                config.load_incluster_config()
            except ConfigException:
                raise KubeUnreachable(f"no kubeconfig and not in a cluster: {err}") from None
        self.namespace = namespace
        self._api_client = client.ApiClient()
        self._batch = client.BatchV1Api(self._api_client)
        self._core = client.CoreV1Api(self._api_client)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call an API method; return the parsed JSON body. Maps client and transport errors to KubeError."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            resp = fn(*args, _preload_content=False, **kwargs)
        except ApiException as err:
            reason = None
            try:
                reason = json.loads(err.body or "{}").get("reason")
            except (ValueError, AttributeError):
                pass
            raise KubeError(f"{fn.__name__}: {err.status} {err.reason}: {(err.body or '')[:300]}", err.status,
                            reason) from None
        except (HTTPError, OSError) as err:
            raise KubeUnreachable(f"cannot reach the Kubernetes API: {err}") from None
        except ValueError as err:  # the client validates bodies (pydantic) before sending
            raise KubeError(f"{fn.__name__}: request refused by the client: {err}") from None
        return json.loads(resp.data or b"{}")

    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call(self._batch.create_namespaced_job, self.namespace, body)

    def get_job(self, name: str) -> dict[str, Any] | None:
        try:
            return self._call(self._batch.read_namespaced_job, name, self.namespace)
        except KubeError as err:
            if err.status == 404:
                return None
            raise

    def list_jobs(self, selector: str) -> list[dict[str, Any]]:
        return self._call(self._batch.list_namespaced_job, self.namespace, label_selector=selector).get("items", [])

    def delete_job(self, name: str) -> bool:
        try:
            self._call(self._batch.delete_namespaced_job, name, self.namespace, propagation_policy="Background")
        except KubeError as err:
            if err.status == 404:
                return False
            raise
        return True

    def list_pods(self, selector: str) -> list[dict[str, Any]]:
        return self._call(self._core.list_namespaced_pod, self.namespace, label_selector=selector).get("items", [])

    def pod_log(self, pod: str, container: str | None = None, tail: int | None = None,
                follow: bool = False) -> Iterator[str]:
        from kubernetes.client.exceptions import ApiException

        kwargs: dict[str, Any] = {"follow": follow}
        if container:
            kwargs["container"] = container
        if tail is not None:
            kwargs["tail_lines"] = tail
        try:
            resp = self._core.read_namespaced_pod_log(pod, self.namespace, _preload_content=False, **kwargs)
        except ApiException as err:
            raise KubeError(f"logs of {pod}: {err.status} {err.reason}", err.status) from None
        buf = b""
        for chunk in resp.stream(4096):
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                yield line.decode("utf-8", "replace")
        if buf:
            yield buf.decode("utf-8", "replace")
