"""Settings for a test run: environment defaults for tests, then the one settings module, unchanged.

Only environment defaults live here, so that every process a test starts (daphne, a Celery worker) inherits the
same configuration through its environment.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

# Development-shaped configuration (no TLS redirect, console email); pytest-django still runs tests with DEBUG off.
os.environ.setdefault("DEBUG", "true")
# A namespace of its own on the shared Redis: a `make run` worker on the same server must never take this run's tasks
# (STACK-NOTES.md), and two test runs at once must not see each other's channel messages.
os.environ.setdefault("STEWARD_NAMESPACE", f"test-{uuid.uuid4().hex[:12]}")

# Tests ingest folders they make under the temporary directory.
os.environ.setdefault(
    "STEWARD_KNOWLEDGE_FOLDER_ROOTS",
    f"{tempfile.gettempdir()},{Path(__file__).resolve().parent.parent / 'var' / 'knowledge'}",
)

from config.settings import *  # noqa: E402,F403
