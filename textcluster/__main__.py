"""``python -m textcluster`` runs the command line."""

from textcluster.cli import main

raise SystemExit(main())
