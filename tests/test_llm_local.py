"""The embedded model: assembly and verification, grammar-constrained answers, cache, reuse.

These load the real Qwen2.5-Coder-0.5B GGUF (installed as pinned packages) through
llama.cpp once per test session; the model file lives in the user cache dir.
"""

from __future__ import annotations

import hashlib

import pytest

from coopbench.core.errors import CoopbenchError
from coopbench.llm import make
from coopbench.llm.model_files import DEFAULT, PackagedModel, assemble, verified_sha256

ACTIONS = [
    "NAME Alice ACTION move up NAME Bob ACTION stay",
    "NAME Alice ACTION interact NAME Bob ACTION move left",
    "NAME Alice ACTION move down NAME Bob ACTION interact",
    "NAME Alice ACTION stay NAME Bob ACTION stay",
]
SYSTEM = (
    "You plan for two cooks, Alice and Bob, in a kitchen. Onions go into the pot; three onions "
    "cook a soup; a cooked soup is served with a dish at the serving window. Reply with one "
    "joint action line: NAME Alice ACTION <action> NAME Bob ACTION <action>."
)


def _msgs(state: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": state}]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COOPBENCH_LLM_CONFIG", str(tmp_path / "no-config.yaml"))


def test_packaged_model_is_assembled_and_verified():
    path = assemble()
    assert path.stat().st_size == DEFAULT.size == 491_400_064
    assert verified_sha256(path) == DEFAULT.sha256


def test_assembly_refuses_a_mismatch_and_leaves_nothing_behind(tmp_path):
    parts = [tmp_path / "a.bin", tmp_path / "b.bin"]
    parts[0].write_bytes(b"GGUF" + b"x" * 100)
    parts[1].write_bytes(b"y" * 50)
    whole = parts[0].read_bytes() + parts[1].read_bytes()
    good = PackagedModel("toy", "toy.gguf", len(whole), hashlib.sha256(whole).hexdigest(), ())
    target = assemble(good, tmp_path / "models", parts=parts)
    assert target.read_bytes() == whole

    bad = PackagedModel("bad", "bad.gguf", len(whole), "0" * 64, ())
    with pytest.raises(CoopbenchError, match="refusing the embedded model"):
        assemble(bad, tmp_path / "models", parts=parts)
    assert sorted(p.name for p in (tmp_path / "models").iterdir() if "bad" in p.name) == [
        "bad.gguf.lock"
    ]  # no half-written file, no temp file

    target.write_bytes(b"GGUF" + b"z" * (len(whole) - 4))  # damaged in place: rebuilt
    assert assemble(good, tmp_path / "models", parts=parts).read_bytes() == whole


def test_embedded_model_answers_a_grammar_constrained_action_choice(tmp_path):
    model = make("local", cache=False, call_log=tmp_path / "llm_calls.jsonl")
    assert model.simulated is False and model.model_id.startswith("local:qwen2.5-coder-0.5b")
    states = ["Alice holds an onion next to the pot; Bob is at the dish rack.",
              "The soup is cooked; Bob holds a dish next to the pot."]
    for i, state in enumerate(states):
        c = model.complete(_msgs(state), choices=ACTIONS, temperature=0.8, sample=i, seed=1)
        assert c.text in ACTIONS
        assert c.usage.tokens_in > 50 and c.usage.tokens_out > 0 and not c.cached
    assert model.usage.calls == 2 and model.backend_calls == 2


def test_shared_prefix_is_not_re_evaluated():
    model = make("local", cache=False)
    model.complete(_msgs("Alice is at the onion dispenser."), choices=ACTIONS)
    same_prefix = model.complete(_msgs("Bob is at the onion dispenser."), choices=ACTIONS)
    new_prefix = model.complete(
        [{"role": "system", "content": "Kitchen rules first. " + SYSTEM},
         {"role": "user", "content": "Bob is at the onion dispenser."}], choices=ACTIONS)
    reused = same_prefix.extra["prompt_tokens_evaluated"]
    fresh = new_prefix.extra["prompt_tokens_evaluated"]
    assert reused < same_prefix.usage.tokens_in / 3
    assert fresh > new_prefix.usage.tokens_in * 0.8


def test_local_cache_rerun_makes_zero_model_calls(tmp_path):
    db = tmp_path / "cache.sqlite3"
    first = make("local", cache=db)
    text = first.complete(_msgs("Alice holds a dish."), choices=ACTIONS).text
    again = make("local", cache=db)
    replay = [again.complete(_msgs("Alice holds a dish."), choices=ACTIONS) for _ in range(2)]
    assert [c.text for c in replay] == [text, text] and all(c.cached for c in replay)
    assert again.backend_calls == 0 and again.usage.cache_hits == 2
    other = make("sim:expert", cache=db)
    assert other.cache is None  # simulated answers are never cached, never shared


def test_local_path_specs_are_checked(tmp_path):
    with pytest.raises(CoopbenchError, match="does not exist"):
        make(f"local:{tmp_path / 'missing.gguf'}")
    not_gguf = tmp_path / "weights.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(CoopbenchError, match="not a GGUF file"):
        make(f"local:{not_gguf}")


def test_local_path_spec_runs_a_user_gguf():
    model = make(f"local:{assemble()}", cache=False)
    assert model.model_id.startswith(f"local:{DEFAULT.filename}@sha256:1d9614638d18024d")
    assert model.complete(_msgs("Bob waits."), choices=ACTIONS[:2]).text in ACTIONS[:2]


def test_a_prompt_longer_than_the_context_is_one_clear_line():
    model = make("local", cache=False)
    with pytest.raises(CoopbenchError, match="exceed context window.*COOPBENCH_LOCAL_N_CTX"):
        model.complete(_msgs("onion " * 5000), choices=ACTIONS)


CAPITAL = [{"role": "system", "content": "Answer with one word."},
           {"role": "user", "content": "What is the capital of France?"}]


def test_scoring_ranks_the_known_best_candidate_first(tmp_path):
    model = make("local", cache=tmp_path / "c.sqlite")
    scores = model.score(CAPITAL, ["Banana", "London", "Paris", "Seven"])
    assert scores.method == "logprobs" and scores.usage.calls == 1
    assert scores.best() == 2 and all(x < 0 for x in scores.logprobs)
    assert scores.logprobs[2] > max(scores.logprobs[:2] + scores.logprobs[3:]) + 2
    again = model.score(CAPITAL, ["Banana", "London", "Paris", "Seven"])
    assert again.cached and again.logprobs == scores.logprobs and model.backend_calls == 1


def test_the_token_tree_scores_each_candidate_as_if_scored_alone():
    """Candidates sharing a prefix are one batch of sequences; none may see another's
    tokens. A prefix of another candidate ("Paris") must not inherit the longer one's score."""
    model = make("local", cache=False)
    candidates = ["Paris", "Paris, France", "Paris is the capital", "Lyon"]
    together = model.score(CAPITAL, candidates).logprobs
    alone = [model.score(CAPITAL, [c]).logprobs[0] for c in candidates]
    # a batch of n sequences runs other matmul kernels than one sequence: ~1 % apart on the
    # plain CPU path; a candidate seeing another's tokens is off by nats
    assert together == pytest.approx(alone, rel=0.02, abs=0.05)
    assert len(set(round(x, 3) for x in together)) == len(candidates)


def test_scoring_between_generations_leaves_generation_unchanged():
    model = make("local", cache=False)
    first = model.complete(_msgs("Both cooks stand by the onions."), choices=ACTIONS).text
    model.score(CAPITAL, ["Paris", "Lyon"])
    assert model.complete(_msgs("Both cooks stand by the onions."), choices=ACTIONS).text == first


def test_threads_follow_the_cores_other_processes_use_now(monkeypatch):
    """An idle 2-core machine gets both cores even when this process itself is busy (the
    1-minute load average counted this process and the install before it: one thread)."""
    from coopbench.llm import local

    assert [local.threads_for(2, busy) for busy in (0.0, 0.4, 1.2, 5.0)] == [2, 2, 1, 1]
    assert local.threads_for(32, 0.0) == 8
    # /proc/stat's busy seconds rose by 0.6 over 0.3 s, all of it this process's own time
    readings = iter([100.0, 100.6])
    clock = iter([5.0, 5.6])
    monkeypatch.setattr(local, "_busy_seconds", lambda cpus: next(readings))
    monkeypatch.setattr(local.time, "process_time", lambda: next(clock))
    monkeypatch.setattr(local.time, "sleep", lambda s: None)
    monotonic = iter([0.0, 0.3])
    monkeypatch.setattr(local.time, "monotonic", lambda: next(monotonic))
    monkeypatch.setattr(local, "_usable_cpus", lambda: [0, 1])
    assert local.default_threads() == 2


def test_threads_fall_back_to_the_load_average_without_proc(monkeypatch):
    from coopbench.llm import local

    monkeypatch.setattr(local, "_busy_seconds", lambda cpus: None)
    monkeypatch.setattr(local, "_usable_cpus", lambda: [0, 1])
    monkeypatch.setattr(local.os, "getloadavg", lambda: (1.7, 1.0, 1.0))
    assert local.default_threads() == 1


def test_busy_seconds_reads_only_this_process_cores():
    from coopbench.llm import local

    everything = local._busy_seconds(local._usable_cpus())
    assert everything is None or everything > 0
    assert local._busy_seconds([]) in (None, 0.0)


def _pool_share() -> int:
    from coopbench.llm import local

    return local._pool_size


def test_pool_workers_share_the_free_cores():
    """Two pool workers loading their models together each get half of an idle 2-core host,
    not both cores each (they would each see the other's cores idle)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from coopbench.llm import local
    from coopbench.runner.executors import _worker_init

    assert [local.threads_for(2, 0.0, sharers) for sharers in (1, 2, 4)] == [2, 1, 1]
    assert local.threads_for(16, 0.0, 2) == 8
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork"),
                             initializer=_worker_init, initargs=(2,)) as pool:
        assert pool.submit(_pool_share).result() == 2
    assert local._pool_size == 1  # the matrix process itself keeps all its cores
