"""Where cdchub keeps runtime state and caches.

Runtime state (data directories, logs, pid files, secrets, the DuckDB file) lives under the state directory
(`.cdchub/` next to the config by default, ignored by git). Downloaded jars live in the cache directory
(`~/.cache/cdchub`, or `$CDCHUB_CACHE`), shared by every checkout and reused across runs.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """The directory holding resolved jars and the Maven repository."""
    env = os.environ.get("CDCHUB_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "cdchub").resolve()
