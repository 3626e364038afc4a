"""The grid's ``tracking:`` section: where the cells log their runs besides the store (MLflow).

Not part of a cell's identity (not hashed): pointing a grid at a tracker does not make its cells new cells. The
launcher hands these to each cell process as MLflow's own variables (``MLFLOW_TRACKING_URI``,
``MLFLOW_EXPERIMENT_NAME``), so a cell run by hand with those variables set tracks the same way. The URI is plain
text in every Job's environment: credentials never go in it (``cluster.mlflow_secret`` mounts a token file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from peftsum.spec.errors import SpecError
from peftsum.spec.fields import setting

_TRACKING_URI = re.compile(r"^(https?://[A-Za-z0-9._~:\[\]-]+(/[A-Za-z0-9._~/-]*)?|databricks(://[A-Za-z0-9._-]+)?)$")
_EXPERIMENT = re.compile(r"^[^\x00-\x1f\x7f]{1,500}$")


def tracking_uri(value: Any, path: str) -> str:
    """An MLflow tracking server: an http(s) URL without credentials (or ``databricks``). Local ``file:`` and
    ``sqlite:`` stores are refused: cells on a cluster could not share them."""
    if isinstance(value, str) and "@" in value.partition("://")[2].split("/", 1)[0]:
        from peftsum.telemetry import redact_url

        raise SpecError(path, redact_url(value), "must not carry credentials (user:password@): they are plain text "
                                                 "in every Job; put a token in the Secret named by "
                                                 "cluster.mlflow_secret (docs/operations.md)")
    if not isinstance(value, str) or not _TRACKING_URI.fullmatch(value):
        raise SpecError(path, value, "must be an MLflow tracking server URL such as http://mlflow.mlflow:5000 "
                                     "(or databricks)")
    return value.rstrip("/")


def experiment_name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _EXPERIMENT.fullmatch(value):
        raise SpecError(path, value, "must be 1-500 printable characters")
    return value


@dataclass(frozen=True)
class TrackingSettings:
    """Experiment tracking of the grid's cells: one MLflow run per cell (params, per-step loss, final scores with
    CIs, links to the store's artifacts); a resumed attempt continues its run; a tracker that is down costs a
    warning, never the cell. Needs the optional ``peftsum[mlflow]`` extra where the cells run. Without
    ``tracking.mlflow``, a cell still tracks when ``MLFLOW_TRACKING_URI`` is set in its environment."""

    mlflow: str | None = setting(None, "MLflow tracking server URL (sets MLFLOW_TRACKING_URI for every cell); null: "
                                       "MLFLOW_TRACKING_URI from the environment, if any", check=tracking_uri,
                                 type_doc="http(s) URL")
    experiment: str | None = setting(None, "MLflow experiment of the runs (MLFLOW_EXPERIMENT_NAME); null: the grid's "
                                           "name", check=experiment_name, type_doc="experiment name")

    def environment(self, grid: str) -> dict[str, str]:
        """The MLflow variables a cell process of grid ``grid`` gets (empty without ``mlflow``)."""
        if not self.mlflow:
            return {}
        return {"MLFLOW_TRACKING_URI": self.mlflow, "MLFLOW_EXPERIMENT_NAME": self.experiment or grid}
