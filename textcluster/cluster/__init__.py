"""Cluster: embedding -> (reducer) -> clusterer -> a run artifact, and ``assign`` (stage 3).

``runs`` is the stage (:func:`cluster`, :func:`assign`), ``reduce`` the reducers and the
2-D projection, ``core`` the clusterer registry and the fit-on-a-subset step, and
``evaluate`` the quality scores of a run.
"""

from __future__ import annotations

from textcluster.cluster.core import CLUSTERERS, get_clusterer
from textcluster.cluster.runs import AssignResult, RunResult, assign, cluster, load_run, run_id_for

__all__ = [
    "CLUSTERERS", "AssignResult", "RunResult", "assign", "cluster", "get_clusterer", "load_run",
    "run_id_for",
]
