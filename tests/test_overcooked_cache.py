"""Motion-planner caching: user cache dir, never site-packages, safe across processes."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from coopbench import envs
from coopbench.core import signed
from coopbench.envs.overcooked import cache
from coopbench.envs.overcooked.upstream import LAYOUTS_DIR

PLANNERS_DIR = Path(LAYOUTS_DIR).parent / "planners"
BUILD = (
    "from coopbench.envs.overcooked.kitchen import Kitchen;"
    "from coopbench.envs.overcooked.layouts import build_mdp, make_setting;"
    "s = make_setting('classic', 'coordination_ring', action_level='skills');"
    "print(len(Kitchen(build_mdp('coordination_ring', s)).mp.all_plans))"
)


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COOPBENCH_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # a fresh signing key
    cache.clear_memo()
    yield tmp_path / "overcooked"
    cache.clear_memo()


def _pickles(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.pkl")) if folder.exists() else []


def test_planners_go_to_the_user_cache_not_site_packages(fresh_cache):
    before = _pickles(PLANNERS_DIR)
    env = envs.make("overcooked/cramped_room-skills-v0")
    env.reset(seed=0)
    env.step(env.expert_joint())
    files = _pickles(fresh_cache)
    assert len(files) == 1 and files[0].name.startswith("cramped_room-mp-")
    assert _pickles(PLANNERS_DIR) == before
    planner = signed.unseal(files[0].read_bytes())
    assert planner.all_plans.keys() == env.kitchen.mp.all_plans.keys()


def test_a_corrupt_cache_file_is_rebuilt(fresh_cache):
    envs.make("overcooked/cramped_room-skills-v0").kitchen.mp  # noqa: B018
    (path,) = _pickles(fresh_cache)
    path.write_bytes(b"truncated")
    cache.clear_memo()
    env = envs.make("overcooked/cramped_room-skills-v0")
    assert env.kitchen.mp.all_plans
    assert signed.unseal(path.read_bytes()).all_plans


class _Planted:
    """What an attacker writes into a shared cache: unpickling it runs `touch marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_planted_pickle_never_runs_and_the_cache_is_rebuilt(fresh_cache, capfd, tmp_path):
    envs.make("overcooked/cramped_room-skills-v0").kitchen.mp  # noqa: B018
    (path,) = _pickles(fresh_cache)
    marker = tmp_path / "owned"
    for planted in (pickle.dumps(_Planted(marker)),  # a plain pickle, and one dressed up as
                    signed.MAGIC + bytes(32) + pickle.dumps(_Planted(marker))):  # ours
        path.write_bytes(planted)
        cache.clear_memo()
        capfd.readouterr()
        env = envs.make("overcooked/cramped_room-skills-v0")
        assert env.kitchen.mp.all_plans
        assert not marker.exists()
        notices = capfd.readouterr().err.strip().splitlines()
        assert len(notices) == 1 and "rebuilding the motion-planner cache" in notices[0]
        assert signed.unseal(path.read_bytes()).all_plans  # rebuilt, signed
    cache.clear_memo()
    envs.make("overcooked/cramped_room-skills-v0").kitchen.mp  # noqa: B018
    assert capfd.readouterr().err == ""  # a good file: no notice


def test_another_users_file_is_not_trusted(fresh_cache, monkeypatch, tmp_path):
    envs.make("overcooked/cramped_room-skills-v0").kitchen.mp  # noqa: B018
    (path,) = _pickles(fresh_cache)
    mine = path.read_bytes()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "someone-else"))
    with pytest.raises(signed.ForeignFile):
        signed.unseal(mine)
    cache.clear_memo()
    envs.make("overcooked/cramped_room-skills-v0").kitchen.mp  # noqa: B018
    assert len(_pickles(fresh_cache)) == 2  # each user's own file, by name: no ping-pong
    assert path.read_bytes() == mine
    assert oct(signed.key_path().stat().st_mode & 0o777) == "0o600"


def test_processes_starting_together_share_one_complete_file(fresh_cache):
    env = {**os.environ, "COOPBENCH_CACHE_DIR": str(fresh_cache.parent)}
    procs = [subprocess.Popen([sys.executable, "-c", BUILD], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [e for _, e in outputs]
    assert len({out.strip() for out, _ in outputs}) == 1
    files = _pickles(fresh_cache)
    assert len(files) == 1
    assert len(signed.unseal(files[0].read_bytes()).all_plans) == int(outputs[0][0])
    assert not list(fresh_cache.glob("*.tmp"))


def test_envs_warm_command(fresh_cache):
    env = {**os.environ, "COOPBENCH_CACHE_DIR": str(fresh_cache.parent)}
    run = subprocess.run([sys.executable, "-m", "coopbench", "envs", "warm", "-l",
                          "cramped_room", "-l", "forced_coordination"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "cramped_room" in run.stdout and "forced_coordination" in run.stdout
    names = {p.name.split("-mp-")[0] for p in _pickles(fresh_cache)}
    assert names == {"cramped_room", "forced_coordination"}
    bad = subprocess.run([sys.executable, "-m", "coopbench", "envs", "warm", "-l", "cramped"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert "unknown Overcooked layout 'cramped'" in bad.stderr
    assert "Traceback" not in bad.stderr
