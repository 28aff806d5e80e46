"""Fixtures of the AppTests: a workspace with an ingested corpus and a finished run."""

from __future__ import annotations

import pytest


@pytest.fixture
def app_ws(tmp_workspace):
    """The temporary workspace the app under test uses ($TEXTCLUSTER_WORKSPACE)."""
    return tmp_workspace
