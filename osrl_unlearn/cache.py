"""The cache folder for datasets, behaviour and adversarial policies, and trained agents.

Everything expensive is stored under a folder keyed by the settings that produced it, so the same
settings reuse the same files and different settings never collide. The root is
``$OSRL_UNLEARN_CACHE`` (default ``~/.cache/osrl-unlearn``); it is never inside the git tree.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

CACHE_ENV = "OSRL_UNLEARN_CACHE"


def cache_root(override: str | os.PathLike | None = None) -> Path:
    """``override``, else ``$OSRL_UNLEARN_CACHE``, else ``~/.cache/osrl-unlearn``."""
    if override is not None:
        return Path(override).expanduser()
    return Path(os.environ.get(CACHE_ENV, "~/.cache/osrl-unlearn")).expanduser()


def settings_key(settings: Any) -> str:
    """A short stable hash of settings (a dataclass or JSON-able value)."""
    if is_dataclass(settings):
        settings = asdict(settings)
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cache_dir(kind: str, name: str, settings: Any, root: str | os.PathLike | None = None) -> Path:
    """``<root>/<kind>/<name>/<settings key>``, e.g. ``datasets/OfflineCarCircle-v0/3f2a...``."""
    return cache_root(root) / kind / name / settings_key(settings)
