"""Seed ranges are bounded and counted before they are expanded (issue #14, case 5), and the
smaller problems from the same probe: `--llm local:<dir>` says it is a directory."""

import subprocess
import sys

import pytest

from coopbench.core.errors import CoopbenchError
from coopbench.runner.seeds import MAX_SEEDS, parse_seeds, seed_ranges
from coopbench.runner.spec import parse_spec


def cli(*args):
    return subprocess.run([sys.executable, "-m", "coopbench", *args], capture_output=True,
                          text=True, timeout=300)


def one_line(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_seed_ranges_are_counted_not_expanded():
    assert parse_seeds("0-2,7") == [0, 1, 2, 7]
    assert seed_ranges("0-999999") == [range(0, 1_000_000)]  # the bound itself is allowed
    for text, why in [("0-99999999999", "100,000,000,000 seeds; at most 1,000,000 per run"),
                      ("0-999999,5", "1,000,001 seeds"),
                      ("5-2", "the range 5-2 runs backwards"),
                      ("4294967296", "below 2**32"),
                      ("a-b", "use a range like 0-9"), ("-3", "use a range like 0-9"),
                      (",", "at least one")]:
        with pytest.raises(CoopbenchError, match=why.replace("*", r"\*")):
            parse_seeds(text)


def test_a_spec_bounds_seeds_and_episodes():
    base = {"name": "x", "envs": ["meetgrid/meet-v0"], "planners": ["random-v0"]}
    with pytest.raises(CoopbenchError, match="100,000,000,000 seeds; at most 1,000,000"):
        parse_spec({**base, "seeds": "0-99999999999"})
    with pytest.raises(CoopbenchError, match="below 2\\*\\*32"):
        parse_spec({**base, "seeds": [2**40]})
    with pytest.raises(CoopbenchError, match="episodes_per_seed"):
        parse_spec({**base, "seeds": 0, "episodes_per_seed": 10**12})
    assert len(parse_spec({**base, "seeds": f"0-{MAX_SEEDS - 1}"}).seeds) == MAX_SEEDS


def test_huge_seed_ranges_are_one_line_from_the_cli(meetgrid, tmp_path):
    one_line(cli("run", "--env", "meetgrid/meet-v0", "--planner", "random-v0", "--seeds",
                 "0-99999999999", "--out", str(tmp_path / "run")),
             "bad --seeds '0-99999999999': 100,000,000,000 seeds; at most 1,000,000 per run")
    one_line(cli("run", "--env", "meetgrid/meet-v0", "--planner", "random-v0", "--seeds",
                 "0-999999", "--episodes", "2", "--out", str(tmp_path / "run")),
             "2,000,000 episodes; at most 1,000,000 per run")
    assert not (tmp_path / "run").exists()
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\nenvs: [meetgrid/meet-v0]\nplanners: [random-v0]\n"
                    "seeds: 0-99999999999\n")
    for extra in ("--no-report", "--dry-run"):
        one_line(cli("matrix", str(spec), "--out", str(tmp_path / "m"), extra),
                 "bad value for key 'seeds': 100,000,000,000 seeds; at most 1,000,000 per run")
    spec.write_text("name: x\nenvs: [meetgrid/meet-v0]\nplanners: [random-v0, expert-v0]\n"
                    "seeds: 0-999999\n")
    one_line(cli("matrix", str(spec), "--out", str(tmp_path / "m"), "--dry-run"),
             "2 cells x 1,000,000 seeds x 1 episodes per seed: 2,000,000 episodes")
    assert not (tmp_path / "m").exists()


def test_a_local_model_path_that_is_a_directory_says_so(meetgrid, tmp_path):
    one_line(cli("run", "--env", "meetgrid/meet-v0", "--planner", "llm/central-v0", "--llm",
                 f"local:{tmp_path}", "--out", str(tmp_path / "run")),
             f"model file {tmp_path} is a directory, not a GGUF file")
    assert not (tmp_path / "run" / "manifest.json").exists()
