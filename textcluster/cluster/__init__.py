"""Cluster: embedding -> (reducer) -> clusterer -> a run artifact, and ``assign`` (stage 3).

``runs`` is the stage (:func:`cluster`, :func:`assign`); ``reduce`` the reducers and the
2-D projection; ``registry`` the one table of clusterers (their parameter schemas, how
each assigns rows) built from one module per method (``kmeans``, ``gmm``, ``hdbscan``,
``dbscan``, ``agglomerative``, ``graphward``, ``selftrain``) that follow the
:class:`~textcluster.cluster.protocol.Clusterer` protocol; ``fitting`` fits on a subset and
assigns the rest; ``distances`` and ``neighbors`` are the shared distance and k-NN
computations; ``smooth`` the k-NN smoothing; ``evaluate`` the quality scores of a run.
"""

from __future__ import annotations

from textcluster.cluster.protocol import Clusterer, ClustererInfo, Param
from textcluster.cluster.registry import CLUSTERERS, get_clusterer, validate_clusterer
from textcluster.cluster.runs import AssignResult, RunResult, assign, cluster, load_run, run_id_for

__all__ = [
    "CLUSTERERS", "AssignResult", "Clusterer", "ClustererInfo", "Param", "RunResult", "assign", "cluster",
    "get_clusterer", "load_run", "run_id_for", "validate_clusterer",
]
