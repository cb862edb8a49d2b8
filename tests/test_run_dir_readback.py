"""Files coopbench reads back (issue #14, cases 3, 4 and 6): a damaged one is one line naming
the file (and line) with exit 2; a resume keeps every good line and moves bad ones aside. A
property test corrupts run directories at random and checks that `report` and the resume
only ever exit 0 or 2, never raise, and never lose a good line.
"""

import pickle
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coopbench.cli import main
from coopbench.core.errors import CoopbenchError
from coopbench.core.io import parse_line
from coopbench.reporting.summary import load_runs, summarise
from coopbench.runner import readback
from coopbench.runner.store import RunStore

SPEC = """\
name: readback
envs: [meetgrid/meet-v0]
planners: [llm/central-v0, baseline/random-v0]
llms: ["sim:expert?noise=0.2"]
seeds: 0-3
"""
EPISODES = 8


def invoke(*args):
    """The CLI in this process: (exit status, stderr lines). Anything it raises propagates,
    so a traceback fails the test."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(list(args))
            status = 0
        except SystemExit as exc:
            status = exc.code or 0
    return status, err.getvalue().strip().splitlines()


def assert_one_line(status, lines, *fragments):
    assert status == 2, lines
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def results(run_dir):
    summary = summarise(load_runs([run_dir]))
    summary.pop("runs")
    return summary


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, plugin_site):
    """One finished matrix run (its spec beside it), made once and copied per test."""
    import os

    from coopbench import envs, planners
    from coopbench.runner.matrix import run_matrix
    from coopbench.runner.spec import load_spec

    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(plugin_site))
    mp.setenv("PYTHONPATH", os.pathsep.join([str(plugin_site), os.environ.get("PYTHONPATH", "")]))
    envs.registry.reload()
    planners.registry.reload()
    root = tmp_path_factory.mktemp("pristine")
    (root / "spec.yaml").write_text(SPEC)
    run_matrix(load_spec(root / "spec.yaml"), root / "run", source=str(root / "spec.yaml"))
    yield root
    mp.undo()
    envs.registry.reload()
    planners.registry.reload()


def copy_run(pristine, where):
    shutil.copytree(pristine / "run", where / "run")
    return where / "run", pristine / "spec.yaml"


# -- case 3: episodes.jsonl ---------------------------------------------------------------


@pytest.mark.parametrize("bad_line", [b"\xff\xfe\x00 not utf-8", b'{"foo": 1}', b"[1,2,3]",
                                      b'{"cell": 5, "env": "e"}', b"null"],
                         ids=["non-utf8", "wrong-keys", "array", "wrong-type", "null"])
def test_a_bad_episode_line_is_one_line_for_report_and_moved_aside_by_the_resume(
    pristine, tmp_path, bad_line
):
    run, spec = copy_run(pristine, tmp_path)
    good = run.joinpath("episodes.jsonl").read_bytes().splitlines(keepends=True)
    run.joinpath("episodes.jsonl").write_bytes(b"".join(good[:3]) + bad_line + b"\n"
                                               + b"".join(good[3:]))
    status, lines = invoke("report", str(run), "--no-files")
    assert_one_line(status, lines, "episodes.jsonl:4: ", "episodes.jsonl.bad")
    status, lines = invoke("matrix", str(spec), "--out", str(run), "--no-report")
    assert status == 0, lines
    assert any("moved 1 unreadable line(s) of episodes.jsonl (4) into episodes.jsonl.bad" in line
               for line in lines), lines
    assert run.joinpath("episodes.jsonl").read_bytes() == b"".join(good)  # byte for byte
    assert run.joinpath("episodes.jsonl.bad").read_bytes() == bad_line + b"\n"
    assert invoke("report", str(run), "--no-files")[0] == 0
    assert results(run) == results(pristine / "run")


def test_the_run_command_repairs_the_same_way(meetgrid, tmp_path):
    out = tmp_path / "run"
    args = ("run", "--env", "meetgrid/meet-v0", "--planner", "expert-v0", "--seeds", "0-3",
            "--out", str(out))
    assert invoke(*args)[0] == 0
    with open(out / "episodes.jsonl", "ab") as f:
        f.write(b'[1,2,3]\n{"foo": 1}\n')
    status, lines = invoke(*args)
    assert status == 0 and "moved 2 unreadable line(s) of episodes.jsonl (5, 6)" in lines[0]
    episodes, bad = RunStore(out).read_episodes()
    assert bad == [] and sorted(e.seed for e in episodes) == [0, 1, 2, 3]


def test_a_torn_last_line_is_still_only_a_note_for_report(pristine, tmp_path):
    run, _ = copy_run(pristine, tmp_path)
    data = run.joinpath("episodes.jsonl").read_bytes()
    run.joinpath("episodes.jsonl").write_bytes(data[:-40])
    store = RunStore(run)
    lines = store.episode_lines()
    assert lines.torn is not None and lines.torn.number == EPISODES and not lines.bad
    assert "skipped a torn last line (line 8)" in load_runs([run]).notes[0]


def test_a_last_line_missing_only_its_newline_is_kept(pristine, tmp_path):
    run, spec = copy_run(pristine, tmp_path)
    data = run.joinpath("episodes.jsonl").read_bytes()
    run.joinpath("episodes.jsonl").write_bytes(data[:-1])
    assert invoke("matrix", str(spec), "--out", str(run), "--no-report")[0] == 0
    assert run.joinpath("episodes.jsonl").read_bytes() == data
    assert not run.joinpath("episodes.jsonl.torn").exists()


def test_bad_transcript_lines_are_moved_aside_too(pristine, tmp_path):
    run, spec = copy_run(pristine, tmp_path)
    before = run.joinpath("transcripts.jsonl").read_bytes()
    with open(run / "transcripts.jsonl", "ab") as f:
        f.write(b'[1,2,3]\n{"cell": "x"}\n\xff\n')
    status, lines = invoke("matrix", str(spec), "--out", str(run), "--no-report")
    assert status == 0, lines
    assert run.joinpath("transcripts.jsonl").read_bytes() == before
    assert run.joinpath("transcripts.jsonl.bad").read_bytes() == b'[1,2,3]\n{"cell": "x"}\n\xff\n'


# -- case 4: manifest.json ----------------------------------------------------------------


@pytest.mark.parametrize(("content", "why"), [
    (bytes(range(256)) * 2, "manifest.json: not valid JSON (not UTF-8 text)"),
    (b'{"created": "x", "spec": {', "manifest.json:1:27: not valid JSON"),
    (b"[]", "not a coopbench manifest (a JSON array, not an object)"),
    (b"{}", "not a coopbench manifest (missing key 'created')"),
    (b'{"created": "x", "spec": {}, "invocations": {}}', "key 'invocations'"),
    (b'{"created": "x", "spec": {}, "spend_abandoned": {"calls": "many"}}',
     "key 'spend_abandoned.calls'"),
], ids=["random-bytes", "truncated", "array", "empty-object", "invocations", "spend"])
def test_a_damaged_manifest_is_one_line_for_report_and_resume(pristine, tmp_path, content, why):
    run, spec = copy_run(pristine, tmp_path)
    run.joinpath("manifest.json").write_bytes(content)
    episodes_before = run.joinpath("episodes.jsonl").read_bytes()
    for args in (("report", str(run), "--no-files"),
                 ("matrix", str(spec), "--out", str(run), "--no-report"),
                 ("matrix", str(spec), "--out", str(run), "--dry-run"),
                 ("run", "--env", "meetgrid/meet-v0", "--planner", "expert-v0", "--out",
                  str(run))):
        status, lines = invoke(*args)
        assert_one_line(status, lines, why, "restore it, or use a new run directory")
    assert run.joinpath("episodes.jsonl").read_bytes() == episodes_before  # nothing touched


def test_a_manifest_that_does_not_say_matrix_names_what_it_is(pristine, tmp_path):
    run, spec = copy_run(pristine, tmp_path)
    run.joinpath("manifest.json").write_text('{"created": "x", "spec": {"command": "run"}}')
    status, lines = invoke("matrix", str(spec), "--out", str(run), "--no-report")
    assert_one_line(status, lines, "is a `coopbench run` directory, not a matrix run")
    run.joinpath("manifest.json").write_text('{"created": "x", "spec": {}}')
    status, lines = invoke("matrix", str(spec), "--out", str(run), "--no-report")
    assert_one_line(status, lines, 'a directory whose manifest has no "kind"')


def test_a_run_into_a_matrix_directory_is_refused(pristine, tmp_path):
    run, _ = copy_run(pristine, tmp_path)
    status, lines = invoke("run", "--env", "meetgrid/meet-v0", "--planner", "expert-v0",
                           "--out", str(run))
    assert_one_line(status, lines, "is a `coopbench matrix` directory")


# -- case 6: checkpoints and train.json ---------------------------------------------------


def _foreign_files(where: Path) -> dict[str, Path]:
    files = {
        "random-bytes": bytes((i * 197 + 13) % 256 for i in range(4096)),
        "plain-pickle": pickle.dumps({"weights": [1.0, 2.0], "kind": object}),
        "empty": b"",
        "text": b"these are not the weights you are looking for\n",
    }
    paths = {}
    for name, data in files.items():
        paths[name] = where / f"{name}.pt"
        paths[name].write_bytes(data)
    torch.save({"format": "coopbench-critic/2", "meta": {"env_id": "x"}}, where / "half.pt")
    paths["half-ours"] = where / "half.pt"
    paths["directory"] = where
    return paths


@pytest.mark.parametrize("kind", ["random-bytes", "plain-pickle", "empty", "text", "half-ours",
                                  "directory"])
def test_a_foreign_critic_checkpoint_is_one_line(tmp_path, kind):
    path = _foreign_files(tmp_path)[kind]
    status, lines = invoke("critic", "eval", "--critic", str(path))
    assert_one_line(status, lines, f"cannot read critic checkpoint {path}: ")
    assert "weights_only" not in lines[0] and "Weights only" not in lines[0]
    assert not lines[0].rstrip().endswith(":")  # never an empty reason


@pytest.mark.parametrize("kind", ["random-bytes", "plain-pickle", "empty", "text", "half-ours"])
def test_a_foreign_potential_checkpoint_is_one_line(tmp_path, kind):
    from coopbench.credit import potential

    path = _foreign_files(tmp_path)[kind]
    with pytest.raises(CoopbenchError) as exc:
        potential.load(path)
    assert "\n" not in str(exc.value) and str(exc.value).startswith("cannot read coopbench "
                                                                     "potential checkpoint")


@pytest.mark.parametrize(("content", "why"), [
    (b"\xff\xfe", "not UTF-8 text"), (b'{"env_id": ', "train.json:1:12: not valid JSON"),
    (b"[1, 2]", "not a JSON object"),
])
def test_a_damaged_train_json_is_one_line(tmp_path, content, why):
    from coopbench.credit.ppo import TrainConfig

    run = tmp_path / "train-run"
    run.mkdir()
    (run / "train.json").write_bytes(content)
    (run / "curves.jsonl").write_text('{"update": 1, "env_steps": 256, "episodes": 2, '
                                      '"return": 0.5}\n')
    status, lines = invoke("report", str(run), "--no-files")
    assert_one_line(status, lines, "cannot read training config", why)
    with pytest.raises(CoopbenchError, match="cannot read training config"):
        TrainConfig.load(run / "train.json")
    (run / "train.json").write_text('{"env_id": 3, "lr": "fast"}')
    with pytest.raises(CoopbenchError, match="key 'env_id'"):
        TrainConfig.load(run / "train.json")


def test_a_damaged_curve_row_is_one_line_for_report(tmp_path):
    run = tmp_path / "train-run"
    run.mkdir()
    (run / "train.json").write_text('{"env_id": "meetgrid/meet-v0", "reward": "sparse"}')
    (run / "curves.jsonl").write_text('{"update": 1, "env_steps": 256}\n[1]\n'
                                      '{"update": 2, "env_steps": 512}\n')
    status, lines = invoke("report", str(run), "--no-files")
    assert_one_line(status, lines, "curves.jsonl:2: not a curve row")


# -- property: any corruption -> exit 0 or 2, never a traceback, no good line lost --------

WRONG_SHAPES = [b'{"foo": 1}', b"[1,2,3]", b'"text"', b"null", b"17", b'{"cell": []}',
                b'{"cell": "c", "env": "e", "planner": "p", "llm": "l", "seed": "x"}',
                b"[" * 5000 + b"]" * 5000, b'{"seed": 1e400}']

mutation = st.one_of(
    st.tuples(st.just("flip"), st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)),
                                        min_size=1, max_size=4)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6)),
    st.tuples(st.just("non-utf8"), st.integers(0, 10**6)),
    st.tuples(st.just("wrong-shape"), st.sampled_from(WRONG_SHAPES)),
    st.tuples(st.just("delete"), st.none()),
    st.tuples(st.just("garble"), st.sampled_from([b"", b"[]", b"{}", b"\x00\xff" * 40])),
)


def mutate(path: Path, change) -> None:
    kind, arg = change
    if kind == "delete":
        path.unlink(missing_ok=True)
        return
    data = bytearray(path.read_bytes()) if path.exists() else bytearray()
    if kind == "flip" and data:
        for position, bits in arg:
            data[position % len(data)] ^= bits
    elif kind == "truncate":
        data = data[: arg % (len(data) + 1)]
    elif kind == "non-utf8" and data:
        at = arg % len(data)
        data[at:at] = b"\xc3\x28\xff"
    elif kind == "wrong-shape":
        lines = bytes(data).split(b"\n")
        lines.insert(len(lines) // 2, arg)
        data = bytearray(b"\n".join(lines))
    elif kind == "garble":
        data = bytearray(arg)
    path.write_bytes(bytes(data))


def _lines(path: Path) -> list[bytes]:
    return [raw for raw in path.read_bytes().split(b"\n") if raw.strip()] if path.exists() else []


def planned(pristine: Path) -> set[tuple[str, int]]:
    return {(e.cell, e.episode) for e in RunStore(pristine / "run").read_episodes()[0]}


def _good(raw: bytes) -> bool:
    try:
        parse_line(raw, readback.episode)
        return True
    except ValueError:
        return False


@settings(max_examples=60, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(target=st.sampled_from(["episodes.jsonl", "manifest.json", "transcripts.jsonl"]),
       changes=st.lists(mutation, min_size=1, max_size=3))
def test_any_corruption_gives_exit_0_or_2_and_keeps_every_good_line(pristine, target, changes):
    with tempfile.TemporaryDirectory() as where:
        run, spec = copy_run(pristine, Path(where))
        for change in changes:
            mutate(run / target, change)
        episodes = run / "episodes.jsonl"
        before = _lines(episodes)
        good = [raw for raw in before if _good(raw)]

        status, lines = invoke("report", str(run), "--no-files", "--format", "json")
        assert status in (0, 2), lines
        if status == 2:
            assert len(lines) == 1 and lines[0].startswith("error: "), lines
        assert _lines(episodes) == before  # report never changes the episodes

        status, lines = invoke("matrix", str(spec), "--out", str(run), "--no-report")
        assert status in (0, 2), lines
        if status == 2:
            assert lines[-1].startswith("error: ") and not any("Traceback" in x for x in lines)
        after = _lines(episodes)
        assert all(raw in after for raw in good)  # no good line lost
        aside = _lines(run / "episodes.jsonl.bad") + _lines(run / "episodes.jsonl.torn")
        assert all(raw in after or raw in aside for raw in before)  # nothing thrown away
        if status == 0:  # every planned episode is done again, and the report reads it
            done = {(e.cell, e.episode) for e in RunStore(run).read_episodes()[0]
                    if e.error is None}
            assert planned(pristine) <= done
            assert invoke("report", str(run), "--no-files", "--format", "json")[0] == 0
