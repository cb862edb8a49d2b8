import json

import pytest

from coopbench.core.errors import CoopbenchError
from coopbench.core.io import read_jsonl, write_json_atomic
from coopbench.core.types import EpisodeResult
from coopbench.runner.store import RunStore


def episode(seed: int) -> EpisodeResult:
    return EpisodeResult(cell=f"c|seed={seed}", env="e/x-v0", planner="p/y-v0", llm="none",
                         seed=seed, success=seed % 2 == 0, return_=float(seed))


def test_manifest_records_provenance(tmp_path):
    store = RunStore(tmp_path / "run").create()
    store.write_manifest({"env": "e/x-v0", "seeds": [0, 1]})
    manifest = json.loads(store.manifest_path.read_text())
    assert manifest["spec"]["seeds"] == [0, 1]
    assert set(manifest["git"]) == {"commit", "dirty"}
    assert manifest["packages"]["numpy"] is not None
    assert not list(store.root.glob(".manifest.json.*"))  # no temp file left behind


def test_atomic_write_keeps_old_file_when_serialisation_fails(tmp_path):
    path = tmp_path / "m.json"
    write_json_atomic(path, {"ok": 1})

    class Unprintable:
        def __str__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_json_atomic(path, {"bad": Unprintable()})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_episodes_append_and_read_back(tmp_path):
    store = RunStore(tmp_path).create()
    for seed in range(3):
        store.append_episode(episode(seed))
    episodes, torn = store.read_episodes()
    assert episodes == [episode(0), episode(1), episode(2)] and torn == []


def test_torn_last_line_is_reported_and_complete_lines_survive(tmp_path):
    store = RunStore(tmp_path).create()
    for seed in range(4):
        store.append_episode(episode(seed))
    data = store.episodes_path.read_bytes()
    store.episodes_path.write_bytes(data[: len(data) - 25])  # a crash mid-write
    episodes, torn = store.read_episodes()
    assert episodes == [episode(0), episode(1), episode(2)]
    assert torn == [4]


def test_repair_cuts_the_torn_tail_and_keeps_it_aside(tmp_path):
    store = RunStore(tmp_path).create()
    store.append_episode(episode(0))
    with open(store.episodes_path, "a") as f:
        f.write('{"cell": "half')
    assert store.repair_torn_tail() == len('{"cell": "half')
    store.append_episode(episode(1))
    assert store.read_episodes() == ([episode(0), episode(1)], [])
    assert (tmp_path / "episodes.jsonl.torn").read_text() == '{"cell": "half\n'


def test_garbage_in_the_middle_is_skipped_not_fatal(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\nnot json\n{"a": 2}\n')
    read = read_jsonl(path)
    assert read.records == [{"a": 1}, {"a": 2}] and read.torn_lines == [2]


def test_unwritable_output_directory_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CoopbenchError, match="cannot write to output directory"):
        RunStore(blocker / "run").create()
