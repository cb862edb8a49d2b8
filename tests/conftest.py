"""Shared fixtures. No test touches the network; every seed is fixed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

TESTS = Path(__file__).resolve().parent
PLUGIN_SOURCE = TESTS / "plugins" / "coopbench-meetgrid"


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plug-in installed (for real, with pip) into a private site directory."""
    target = tmp_path_factory.mktemp("plugin-site")
    source = tmp_path_factory.mktemp("plugin-src") / PLUGIN_SOURCE.name
    shutil.copytree(PLUGIN_SOURCE, source)  # pip builds in place: keep the repo clean
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--disable-pip-version-check", "--target", str(target), str(source)],
        check=True,
    )
    return target


@pytest.fixture
def meetgrid(plugin_site: Path, monkeypatch: pytest.MonkeyPatch):
    """Make the plug-in visible to this process's registries (and to subprocesses)."""
    from coopbench import envs, planners

    monkeypatch.syspath_prepend(str(plugin_site))
    path = os.pathsep.join([str(plugin_site), os.environ.get("PYTHONPATH", "")])
    monkeypatch.setenv("PYTHONPATH", path)
    envs.registry.reload()
    planners.registry.reload()
    yield plugin_site
    envs.registry.reload()
    planners.registry.reload()


MEETGRID = "meetgrid/meet-v0"


@pytest.fixture(scope="session")
def critic_path(plugin_site: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small meetgrid critic, trained once per session (a few seconds)."""
    from coopbench import envs
    from coopbench.critics.dataset import CollectConfig, collect
    from coopbench.critics.train import TrainConfig, train

    sys.path.insert(0, str(plugin_site))
    envs.registry.reload()
    try:
        data = collect(CollectConfig(MEETGRID, expert_episodes=30, reset_episodes=30, seed=0))
        path = tmp_path_factory.mktemp("critic") / "meet.pt"
        train(data, TrainConfig(epochs=40, patience=10, max_seconds=30), path)
    finally:
        sys.path.remove(str(plugin_site))
        envs.registry.reload()
    return path


@pytest.fixture
def server():
    """A fake OpenAI-compatible server on 127.0.0.1 (tests/fake_openai.py)."""
    from fake_openai import FakeServer

    srv = FakeServer()
    yield srv
    srv.close()
