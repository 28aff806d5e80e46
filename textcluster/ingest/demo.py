"""The bundled demo corpus: Banking77 customer-support questions (CC BY 4.0).

>>> from textcluster import corpus, demo
>>> corpus.ingest(demo.demo_corpus_path(), demo.DEMO_SPEC, ws)  # doctest: +SKIP

The file ``textcluster/ingest/data/banking77.csv.gz`` has the columns ``text`` and
``label`` (the intent name, 77 classes, 10,003 rows); its licence is
``textcluster/ingest/data/BANKING77_LICENSE``. It was built with
:func:`write_banking77_csv` from the PolyAI release.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

from textcluster.config import CorpusSpec
from textcluster.errors import CorpusError

DATA_DIR = Path(__file__).parent / "data"

#: Credit line to show wherever the demo corpus is used.
DEMO_CREDIT = (
    "Banking77, PolyAI: Casanueva et al., Efficient Intent Detection with Dual Sentence "
    "Encoders, 2020, CC BY 4.0"
)

#: How to read the demo corpus: text in ``text``, intent name in ``label`` (evaluation only).
DEMO_SPEC = CorpusSpec(text_fields=("text",), label_field="label")


def demo_corpus_path() -> Path:
    """Path of the bundled ``banking77.csv.gz`` (columns ``text``, ``label``)."""
    p = DATA_DIR / "banking77.csv.gz"
    if not p.is_file():
        raise CorpusError(f"the demo corpus is missing from the installation: {p}")
    return p


def demo_license_path() -> Path:
    """Path of the demo corpus licence (CC BY 4.0)."""
    return DATA_DIR / "BANKING77_LICENSE"


def write_banking77_csv(src_dir: str | Path, dest: str | Path) -> int:
    """Build the demo file from a Banking77 folder; returns the number of rows.

    ``src_dir`` holds ``train_text.txt`` and ``train_labels.txt`` (one line each per
    example) and ``categories.json`` (a list of intent names, or a mapping of ids to
    names). Labels that are ids are replaced by names. The gzip header carries no
    time stamp, so the same input gives the same bytes.
    """
    src = Path(src_dir)
    texts = (src / "train_text.txt").read_text(encoding="utf-8").splitlines()
    labels = (src / "train_labels.txt").read_text(encoding="utf-8").splitlines()
    if len(texts) != len(labels):
        raise CorpusError(f"{src}: {len(texts)} texts but {len(labels)} labels")
    cats = json.loads((src / "categories.json").read_text(encoding="utf-8"))
    names = {str(i): n for i, n in enumerate(cats)} if isinstance(cats, list) else {str(k): v for k, v in cats.items()}
    known = set(names.values())
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["text", "label"])
    for t, lab in zip(texts, labels, strict=True):
        lab = lab.strip()
        w.writerow([t.strip(), lab if lab in known else names.get(lab, lab)])
    with open(dest, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(buf.getvalue().encode("utf-8"))
    return len(texts)
