"""textcluster: see what is inside a text corpus, cluster it, and export a representative subset.

The package is layered: ``corpus`` (ingest) -> ``embed`` (encoders) ->
``reduce``/``cluster`` (runs) -> ``describe``/``sampling`` -> ``sql`` (query and
export). ``pipeline`` chains the stages; ``cli`` exposes each as a subcommand;
the Streamlit app in ``app.py`` and ``views/`` sits on top and is never imported
from here.
"""

__version__ = "0.1.0"
