"""What a clusterer is: the :class:`Clusterer` protocol and the parameter schema of a method.

A clusterer follows scikit-learn's conventions: the constructor only stores its
arguments; ``fit(X) -> self`` does the work and sets ``labels_`` ((n,) int, -1 = noise);
``predict(X) -> labels`` ((m,) int32) labels rows it was not fitted on. Distances are not
part of a clusterer: they come from a separate call in the space the clusterer saw
(:func:`textcluster.cluster.distances.nearest_center`). Optional, where the method has them:

- ``cluster_centers_`` (k, d): the method's own centres (k-means, GMM);
- ``probabilities_`` (n,) and ``predict_strength(X) -> (labels, strength)``: membership
  strength in [0, 1] (GMM, HDBSCAN, self-training);
- ``state() -> dict of arrays`` and a ``from_state`` classmethod: the fitted model saved
  without pickle, for methods whose runs assign new texts with the model itself (GMM);
- ``history_``: training curves shown by the app (self-training).

Each method is described by a :class:`ClustererInfo` (name, help, which
:class:`~textcluster.config.ClustererConfig` fields it reads, the schema of its extra
``params``, how it assigns rows, ...) kept in :mod:`textcluster.cluster.registry`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from textcluster.config import ClustererConfig
from textcluster.errors import ConfigError
from textcluster.progress import ProgressFn

AssignMode = Literal["centroid", "model", "knn"]
ParamType = Literal["int", "float", "str", "bool", "ints"]


@runtime_checkable
class Clusterer(Protocol):
    """The interface every clusterer follows (see the module docstring)."""

    labels_: np.ndarray

    def fit(self, X: np.ndarray) -> Clusterer:
        """Fit on ``X`` (n, d) and set ``labels_``; returns self."""
        ...

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Labels (m,) int32 of rows of ``X`` (m, d) (-1 = noise)."""
        ...


@dataclass(frozen=True)
class Param:
    """One method-specific setting (a key of ``ClustererConfig.params``).

    type: ``int`` | ``float`` | ``str`` | ``bool`` | ``ints`` (a list of integers).
    default: the value used when the key is absent (a key set to its default does not
    change the run id). low / high: inclusive bounds for numbers (and for each item of
    ``ints``); choices: the allowed strings; also: extra allowed literals (``"auto"``);
    nullable: None is allowed.
    """

    type: ParamType
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None
    also: tuple[Any, ...] = ()
    nullable: bool = False

    def allowed(self) -> str:
        """The allowed values in words, for error messages and help."""
        if self.type == "str":
            what = "one of " + ", ".join(repr(c) for c in self.choices or ())
        elif self.type == "bool":
            what = "true or false"
        else:
            noun = {"int": "an integer", "float": "a number", "ints": "a list of integers"}[self.type]
            bounds = []
            if self.low is not None:
                bounds.append(f">= {self.low:g}")
            if self.high is not None:
                bounds.append(f"<= {self.high:g}")
            what = noun + (" " + " and ".join(bounds) if bounds else "")
            if self.type == "ints" and bounds:
                what = f"a list of integers, each {' and '.join(bounds)}"
        extras = [repr(a) for a in self.also] + (["null"] if self.nullable else [])
        return what + (" or " + " or ".join(extras) if extras else "")

    def check(self, method: str, key: str, value: Any) -> Any:
        """``value`` normalised (lists -> tuples), or :class:`ConfigError` naming key, value and range."""
        if value is None and self.nullable:
            return None
        if any(value == a and type(value) is type(a) for a in self.also):
            return value
        ok = True
        out = value
        if self.type == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.type == "float":
            ok = isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)
            out = float(value) if ok else value
        elif self.type == "bool":
            ok = isinstance(value, bool)
        elif self.type == "str":
            ok = isinstance(value, str) and (self.choices is None or value in self.choices)
        elif self.type == "ints":
            ok = isinstance(value, list | tuple) and len(value) > 0 and all(
                isinstance(v, int) and not isinstance(v, bool) for v in value
            )
            out = tuple(value) if ok else value
        if ok and self.type in ("int", "float", "ints"):
            items = out if self.type == "ints" else (out,)
            ok = all((self.low is None or v >= self.low) and (self.high is None or v <= self.high) for v in items)
        if not ok:
            raise ConfigError(f"{method} parameter {key}={value!r} should be {self.allowed()}")
        return out


@dataclass
class Hooks:
    """Progress and cancel for methods whose fit is long (``takes_hooks``)."""

    progress: ProgressFn | None = None
    cancel: threading.Event | None = None


#: ``factory(cfg, params, hooks)``: a new, unfitted clusterer; ``params`` are checked and complete.
Factory = Callable[[ClustererConfig, dict[str, Any], Hooks], Clusterer]


@dataclass(frozen=True)
class ClustererInfo:
    """One entry of the clusterer registry.

    name: the ``method`` value; help: one line for the CLI and the app.
    factory: builds the clusterer (see :data:`Factory`).
    fields: the :class:`ClustererConfig` fields the method reads (``k``,
        ``min_cluster_size``, ``min_samples``, ``eps``); the others do not change its runs.
    params: the schema of the method's extra settings (``ClustererConfig.params``).
    can_mark_noise: may label rows -1 (then ``noise`` keep/assign applies).
    assign: how rows outside the fit subset and new texts are labelled: ``centroid``
        (nearest centre), ``model`` (the saved model's predict), ``knn`` (the method's
        predict for rows outside the fit subset; k-NN over the run's rows for new texts).
    max_fit: default cap on fitted rows (methods that are O(n^2)).
    has_probabilities: sets ``probabilities_`` and ``predict_strength``.
    takes_hooks: the factory passes progress and cancel to the clusterer.
    """

    name: str
    help: str
    factory: Factory
    fields: tuple[str, ...]
    params: Mapping[str, Param] = field(default_factory=dict)
    can_mark_noise: bool = False
    assign: AssignMode = "centroid"
    max_fit: int | None = None
    has_probabilities: bool = False
    takes_hooks: bool = False

    @property
    def uses_k(self) -> bool:
        """True when the method takes a number of clusters."""
        return "k" in self.fields
