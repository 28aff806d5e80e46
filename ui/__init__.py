"""The Streamlit layer of textcluster: session-state keys, cached loaders, shared widgets.

Only this package and ``views/`` import Streamlit; ``textcluster`` never does.
"""
