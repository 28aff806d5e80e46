"""Query: sandboxed read-only SQL over a workspace, and exports with provenance (stage 5).

``sql`` runs one SELECT over the views ``docs``, ``assignments``, ``clusters`` and
``samples``; ``export`` streams a run, a sample or a query to CSV / JSONL / Parquet.
"""

from __future__ import annotations
