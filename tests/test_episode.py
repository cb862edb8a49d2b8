from coopbench import envs, planners
from coopbench.episode import run_episode


def play(planner_id: str, seed: int):
    env = envs.make("meetgrid/meet-v0")
    planner = planners.make(planner_id)
    return run_episode(env, planner, seed=seed, env_id="meetgrid/meet-v0", planner_id=planner_id)


def test_expert_meets_within_the_cap(meetgrid):
    result = play("expert-v0", 0)
    assert result.success and result.interaction_steps == 4 and result.return_ == 1.0
    assert result.llm_queries == 0 and result.error is None


def test_plugin_planner_runs_through_the_loop(meetgrid):
    result = play("meetgrid/walker-v0", 0)
    assert result.success and result.interaction_steps == 8


def test_random_planner_is_reproducible_per_seed(meetgrid):
    runs = [play("random-v0", seed) for seed in (0, 0, 1)]
    transcripts = []
    for seed in (0, 0, 1):
        steps = []
        env = envs.make("meetgrid/meet-v0")
        run_episode(env, planners.make("random-v0"), seed=seed, on_step=steps.append)
        transcripts.append([s.joint for s in steps])
    assert transcripts[0] == transcripts[1] != transcripts[2]
    assert runs[0].interaction_steps == len(transcripts[0])
