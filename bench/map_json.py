"""The Explore map's figure as JSON: seconds per serialisation with each of plotly's engines.

    OMP_NUM_THREADS=1 .venv/bin/python bench/map_json.py --rows 1000000 --json

Every rerun of the Explore page hands its figure to ``st.plotly_chart``, which serialises it with
``plotly.io.to_json(figure, validate=False)``. Plotly's "auto" engine uses orjson when it is
installed (a dependency of the project) and otherwise the standard ``json`` module through
``PlotlyJSONEncoder``. This builds the map of ``--rows`` points in ``--k`` clusters
(:func:`ui.map.build_map`, synthetic coordinates, no workspace; nothing read from ../shared),
then times Streamlit's own path (figure check, then ``to_json``) ``--repeat`` times per engine,
in one process, after one untimed warm-up each, alternating the engines, and prints a table,
then (``--json``) one JSON line:
``{"rows": N, "points": ..., "engines": {"orjson": {"median_s": ...}, "json": {...}},
"json_over_orjson": ..., "bytes": ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textcluster.cli import positive_int  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=positive_int, default=1_000_000, help="points on the map (default 1,000,000)")
    ap.add_argument("--k", type=positive_int, default=150, help="clusters (default 150)")
    ap.add_argument("--repeat", type=positive_int, default=5, help="serialisations per engine (default 5)")
    ap.add_argument("--json", action="store_true", help="print one JSON line last")
    args = ap.parse_args()

    import numpy as np
    import plotly.io as pio
    import plotly.tools

    from ui.map import build_map, chart_figure, distinct_colors

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(args.k, 2)) * 20
    labels = rng.integers(0, args.k, args.rows)
    coords = (centres[labels] + rng.normal(size=(args.rows, 2))).astype(np.float32)
    colors = distinct_colors(args.k)
    fig = build_map(coords, labels, {c: f"cluster {c}" for c in range(args.k)}, dict(enumerate(colors)))
    engines = ["orjson", "json"]
    try:
        import orjson  # noqa: F401
    except ImportError:
        engines = ["json"]
    times: dict[str, list[float]] = {e: [] for e in engines}

    def serialise(engine: str) -> str:
        # what st.plotly_chart does with the figure (streamlit/elements/plotly_chart.py)
        checked = plotly.tools.return_figure_from_figure_or_data(chart_figure(fig.figure), validate_figure=True)
        return pio.to_json(checked, validate=False, engine=engine)

    size = 0
    for engine in engines:  # warm-up, not timed: imports and first-call costs
        serialise(engine)
    for _ in range(args.repeat):
        for engine in engines:
            t0 = time.perf_counter()
            size = len(serialise(engine))
            times[engine].append(time.perf_counter() - t0)
    out = {"rows": args.rows, "points": fig.points, "k": args.k, "repeat": args.repeat, "bytes": size,
           "engines": {e: {"median_s": round(statistics.median(v), 3), "min_s": round(min(v), 3)}
                       for e, v in times.items()},
           "load_avg_1min": round(os.getloadavg()[0], 1), "date": time.strftime("%Y-%m-%d %H:%M")}
    if "orjson" in times:
        out["json_over_orjson"] = round(statistics.median(times["json"]) / statistics.median(times["orjson"]), 1)
    print(f"{'engine':8s} {'median s':>9s} {'min s':>7s}")
    for e, v in out["engines"].items():
        print(f"{e:8s} {v['median_s']:9.3f} {v['min_s']:7.3f}")
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
