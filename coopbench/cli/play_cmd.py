"""`coopbench play`: one episode of an env with a planner, shown as text and drawn to a GIF.

The episode is assembled by the runner (`runner.single.assemble`), as `run` and `matrix` do.
"""

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
from coopbench.llm.backends import spec_help
from coopbench.runner.single import EpisodeTask, assemble


def play(
    env: str = typer.Option(..., "--env", help="Env id, e.g. roco/sweep-y1g1-v0."),
    planner: str = typer.Option("expert-v0", "--planner", help="Planner id."),
    llm: str = typer.Option("local", "--llm", help=spec_help(
        "LLM spec, for planners that use one")),
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
    build("env", env_spec.id, envs.make, env_kwargs).close()  # a refused value: one line
    build("planner", planner_spec.id, planners.make, planner_kwargs)
    llm_spec = "none"
    if planner_spec.caps.needs_llm:
        from coopbench import llm as llm_layer

        llm_spec = llm_layer.parse(llm).canonical()
    task = EpisodeTask(env_spec.id, planner_spec.id, llm_spec, seed, env_kwargs=env_kwargs,
                       planner_kwargs=planner_kwargs)
    episode = assemble(task, render_mode="rgb_array" if gif else None)
    frames = []

    def on_step(record: StepRecord) -> None:
        if gif:
            frames.append(episode.env.render())
        if not quiet:
            actions = shown("; ".join(f"{a}: {t}" for a, t in record.joint.items()))
            console.print(f"[dim]step {record.step:>3}[/dim] {actions}  reward {record.reward:g}")

    def on_reset() -> None:  # the first frame is the initial state
        if gif:
            frames.append(episode.env.render())

    try:
        result = episode.play(on_step, on_reset)
    finally:
        episode.close()
    verdict = "[green]success" if result.success else "[red]failure"
    console.print(
        f"{verdict}[/] in {result.interaction_steps} steps · return {result.return_:g} · "
        f"{result.llm_queries} LLM queries"
    )
    if gif:
        console.print(f"wrote {write_gif(frames, gif, fps=fps)} ({len(frames)} frames)")
