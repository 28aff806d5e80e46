"""Describe: what is in each cluster, and representative samples of a run (stage 4).

``clusters`` gives keywords, labels and nearest / edge examples (:func:`describe`),
``sampling`` draws a representative subset (and the stratified subset a scatter draws),
``allocation`` shares a row budget across clusters (used by both), ``search`` finds the
documents containing a phrase, ``llm`` labels clusters with a language model.
"""

from __future__ import annotations

from textcluster.describe.clusters import (
    ClusterDescription,
    Description,
    describe,
    description_id_for,
    latest_description,
    load_description,
)

__all__ = [
    "ClusterDescription", "Description", "describe", "description_id_for", "latest_description",
    "load_description",
]
