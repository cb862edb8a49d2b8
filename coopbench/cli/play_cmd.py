"""`coopbench play`: one episode of an env with a planner, shown as text and drawn to a GIF."""

from __future__ import annotations

from pathlib import Path

import typer

from coopbench import envs, planners
from coopbench.cli._common import console, shown
from coopbench.cli.kwargs import (
    ENV_KWARG_OPTION,
    PLANNER_KWARG_OPTION,
    build,
    check_env_kwargs,
    check_planner_kwargs,
    parse_kwargs,
)
from coopbench.core.animation import write_gif
from coopbench.core.errors import CoopbenchError
from coopbench.core.types import StepRecord
from coopbench.episode import run_episode
from coopbench.runner.single import build_llm


def play(
    env: str = typer.Option(..., "--env", help="Env id, e.g. roco/sweep-y1g1-v0."),
    planner: str = typer.Option("expert-v0", "--planner", help="Planner id."),
    llm: str = typer.Option("local", "--llm", help="LLM spec, for planners that use one."),
    seed: int = typer.Option(0, "--seed", min=0, help="Episode seed."),
    gif: Path | None = typer.Option(None, "--gif", help="Write an animation of the episode here."),
    fps: float = typer.Option(2.0, "--fps", min=0.1, help="GIF frames per second."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Do not print each step."),
    env_kwarg: list[str] | None = ENV_KWARG_OPTION,
    planner_kwarg: list[str] | None = PLANNER_KWARG_OPTION,
) -> None:
    """Play one episode; print each joint action and optionally write a GIF of it."""
    env_spec = envs.registry.spec(env)
    planner_spec = planners.registry.spec(planner)
    env_kwargs = parse_kwargs(env_kwarg, "--env-kwarg")
    planner_kwargs = parse_kwargs(planner_kwarg, "--planner-kwarg")
    if "render_mode" in env_kwargs:
        raise CoopbenchError("--env-kwarg render_mode: play sets it (rgb_array with --gif)")
    check_env_kwargs(env_spec.id, env_kwargs)
    check_planner_kwargs(planner_spec.id, planner_kwargs)
    environment = build("env", env_spec.id, envs.make, env_kwargs,
                        render_mode="rgb_array" if gif else None)
    agent = build("planner", planner_spec.id, planners.make, planner_kwargs)
    model = build_llm(planner_spec.id, llm, None)
    frames = []

    def on_step(record: StepRecord) -> None:
        if gif:
            frames.append(environment.render())
        if not quiet:
            actions = shown("; ".join(f"{a}: {t}" for a, t in record.joint.items()))
            console.print(f"[dim]step {record.step:>3}[/dim] {actions}  reward {record.reward:g}")

    def on_reset() -> None:  # the first frame is the initial state
        if gif:
            frames.append(environment.render())

    result = run_episode(
        environment, agent, seed=seed, llm=model,
        env_id=env_spec.id, planner_id=planner_spec.id, on_step=on_step, on_reset=on_reset,
    )
    verdict = "[green]success" if result.success else "[red]failure"
    console.print(
        f"{verdict}[/] in {result.interaction_steps} steps · return {result.return_:g} · "
        f"{result.llm_queries} LLM queries"
    )
    if gif:
        console.print(f"wrote {write_gif(frames, gif, fps=fps)} ({len(frames)} frames)")
