"""Where the LLM layer keeps files: the user cache dir, overridable for tests and CI.

- `COOPBENCH_CACHE_DIR`: root of everything cached (default: platformdirs' user cache dir).
- `COOPBENCH_MODEL_DIR`: where assembled model files go (default: `<cache root>/models`).
- `COOPBENCH_LLM_CONFIG`: the config file (default: `<user config dir>/llm.yaml`).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "coopbench"


def cache_root() -> Path:
    override = os.environ.get("COOPBENCH_CACHE_DIR")
    return Path(override).expanduser() if override else Path(platformdirs.user_cache_dir(APP))


def model_dir() -> Path:
    override = os.environ.get("COOPBENCH_MODEL_DIR")
    return Path(override).expanduser() if override else cache_root() / "models"


def cache_db() -> Path:
    return cache_root() / "llm-cache.sqlite3"


def config_file() -> Path:
    override = os.environ.get("COOPBENCH_LLM_CONFIG")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_config_dir(APP)) / "llm.yaml"
