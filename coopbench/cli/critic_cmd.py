"""`coopbench critic collect|train|eval`: ReAd critics from data to a ranked checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from coopbench.cli._common import console, err_console, print_json
from coopbench.core.errors import CoopbenchError
from coopbench.core.runlock import file_lock

critic_app = typer.Typer(help="Collect data for, train and evaluate ReAd advantage critics.")


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=err_console,
                    transient=True)


@critic_app.command()
def collect(
    env: str = typer.Option(..., "--env", help="Env id, e.g. roco/sweep-y2g2-v0."),
    out: Path = typer.Option(..., "--out", help="Dataset file to write (.npz)."),
    from_planner: str = typer.Option(
        None, "--from-planner", help="ReAd's critic data: roll out this planner with --llm "
        "(Monte-Carlo returns of its own episodes); --episodes of it, and the expert and "
        "reset sources then default to 0 episodes."),
    episodes: int = typer.Option(None, "--episodes", min=0,
                                 help="Episodes of the --from-planner source (default 10)."),
    epsilon: float = typer.Option(0.0, "--epsilon", min=0.0, max=1.0,
                                  help="Planner source: per-step chance of a random legal "
                                  "joint action instead of the planner's."),
    expert_episodes: int = typer.Option(None, min=0,
                                        help="Exploring-expert episodes (default 30)."),
    reset_episodes: int = typer.Option(None, min=0, help="Random-reset episodes (default 60)."),
    llm_episodes: int = typer.Option(0, min=0, help="LLM-planner episodes."),
    llm: str = typer.Option("sim:expert?noise=0.4", help="Model spec for the planner source."),
    llm_planner: str = typer.Option("central-v0", help="Planner for the llm source."),
    explore: float = typer.Option(0.05, min=0.0, max=1.0, help="Random-action chance per agent."),
    branch: float = typer.Option(0.3, min=0.0, max=1.0,
                                 help="Per-step chance of a counterfactual deviation row."),
    gamma: float = typer.Option(0.95, min=0.0, max=1.0, help="Discount of the MC targets."),
    horizon_scale: float = typer.Option(3.0, min=1.0, help="Roll out past the step cap (x cap)."),
    max_transitions: int = typer.Option(0, min=0, help="Stop at this many rows, the sources' "
                                        "episodes interleaved in proportion (0: no limit)."),
    seed: int = typer.Option(0, min=0, help="Seed of the collection."),
) -> None:
    """Roll out expert, random-reset and planner episodes into a dataset with its provenance."""
    from coopbench import envs
    from coopbench.critics.dataset import CollectConfig, sources_of
    from coopbench.critics.dataset import collect as run_collect

    env_id = envs.registry.spec(env).id
    planned = from_planner is not None
    if planned:
        from coopbench import planners

        llm_planner = planners.registry.spec(from_planner).id  # an unknown id: one line
        llm_episodes = 10 if episodes is None else episodes
    elif episodes is not None:
        raise CoopbenchError("--episodes counts the --from-planner source's episodes; "
                             "name the planner, or use --expert-episodes/--reset-episodes")
    cfg = CollectConfig(env_id, expert_episodes=_default(expert_episodes, 0 if planned else 30),
                        reset_episodes=_default(reset_episodes, 0 if planned else 60),
                        llm_episodes=llm_episodes, llm=llm, llm_planner=llm_planner,
                        epsilon=epsilon, explore=explore, branch=branch, gamma=gamma,
                        horizon_scale=horizon_scale, seed=seed, max_transitions=max_transitions)
    cfg.check()
    total = cfg.expert_episodes + cfg.reset_episodes + cfg.llm_episodes
    with file_lock(out, "coopbench critic collect"), _progress() as progress:
        bar = progress.add_task(f"collect {env_id}", total=max_transitions or total, status="")

        def advance(source: str, _episodes: int, rows: int) -> None:
            done = {"completed": min(rows, max_transitions)} if max_transitions else {"advance": 1}
            progress.update(bar, status=source, **done)

        data = run_collect(cfg, advance)
        data.save(out)
    parts = ", ".join(f"{s['label']} {s['transitions']} ({s['episodes']} episodes)"
                      for s in sources_of(data))
    console.print(f"{len(data)} transitions from {data.meta['episodes']} episodes "
                  f"[{parts}] -> {out}", highlight=False, markup=False)


def _default(value: int | None, default: int) -> int:
    return default if value is None else value


@critic_app.command()
def train(
    data: list[Path] = typer.Option(..., "--data", help="Dataset file(s); repeat to merge."),
    out: Path = typer.Option(..., "--out", help="Checkpoint to write (.pt)."),
    encoder: str = typer.Option("structured", help="structured (verb/object) or text (MiniLM)."),
    device: str = typer.Option("auto", help="auto (the faster of CPU and CUDA, timed on "
                               "this network and data; CPU without CUDA), cpu, cuda[:N]."),
    epochs: int = typer.Option(200, min=1, help="Upper bound on epochs."),
    batch_size: int = typer.Option(0, min=0, help="Rows per step (0: the device's default, "
                                   "256 on CPU, 1024 on CUDA)."),
    lr: float = typer.Option(1e-3, min=0.0, help="Adam learning rate."),
    hidden: int = typer.Option(256, min=1, help="Hidden width."),
    layers: int = typer.Option(2, min=1, help="Hidden layers."),
    patience: int = typer.Option(15, min=1, help="Early-stopping patience (epochs)."),
    val_fraction: float = typer.Option(0.15, help="Episodes held out for validation."),
    max_seconds: float = typer.Option(240.0, min=1.0, help="Wall-clock budget."),
    balance: float = typer.Option(0.5, min=0.0, help="Row weight (action count)^-balance."),
    seed: int = typer.Option(0, min=0),
    ensemble: int = typer.Option(1, min=1, help="Networks trained (seeds seed..seed+n-1); "
                                 "the critic scores with their mean."),
    prefix_targets: str = typer.Option("data", "--prefix-targets",
                                       help="Masked-prefix rows: data (every transition) or "
                                       "behaviour (only where the masked agents took the "
                                       "behaviour action, not a counterfactual deviation)."),
    potential: Path = typer.Option(None, "--potential", help="A `coopbench credit fit` "
                                   "checkpoint: add its per-agent potential shaping to the "
                                   "MC targets (team target = mean over agents)."),
    potential_scale: float = typer.Option(1.0, "--potential-scale",
                                          help="λ of the shaping λ(γΦ_i(s') − Φ_i(s))."),
) -> None:
    """Train a prefix-masked Q critic with early stopping; save a checkpoint."""
    import torch

    from coopbench.credit.shaping import shape_returns
    from coopbench.critics.critic import pick_device
    from coopbench.critics.dataset import Dataset, sources_of
    from coopbench.critics.train import TrainConfig
    from coopbench.critics.train import train as run_train

    cfg = TrainConfig(encoder=encoder, hidden=hidden, layers=layers, lr=lr,
                      batch_size=batch_size, epochs=epochs, patience=patience,
                      val_fraction=val_fraction, max_seconds=max_seconds, device=device,
                      balance=balance, seed=seed, ensemble=ensemble,
                      prefix_targets=prefix_targets)
    cfg.validate()
    if device != "auto":
        chosen = str(pick_device(device))  # a bad name is one line before the data is read
    elif torch.cuda.is_available():
        chosen = "the faster of cpu and cuda (timed once the data is loaded)"
    else:
        chosen = "cpu (no CUDA device found)"
    console.print(f"training on {chosen}; torch {torch.__version__}")
    parts = [Dataset.load(p) for p in data]
    if potential is not None:  # shaped per part: replay needs each part's own seeds
        parts = [shape_returns(p, potential, potential_scale) for p in parts]
        console.print(f"MC targets shaped with the potential {potential} (scale "
                      f"{potential_scale:g}, team target = mean over agents)")
    dataset = Dataset.concat(parts)
    console.print("data: " + ", ".join(f"{s['label']} {s['transitions']}"
                                       for s in sources_of(dataset))
                  + f" ({len(dataset)} transitions)", highlight=False, markup=False)
    with file_lock(out, "coopbench critic train"), _progress() as progress:
        bar = progress.add_task("train", total=epochs, status="")

        def on_epoch(epoch: int, tr: float, va: float) -> None:
            progress.update(bar, completed=epoch, status=f"train {tr:.4f} val {va:.4f}")

        _, report = run_train(dataset, cfg, out, on_epoch)
    console.print(
        f"{report.rows} rows, {report.epochs} epochs ({report.stopped} stop, best "
        f"{report.best_epoch}), val loss {report.val_loss:.4f}, {report.seconds:.1f} s, "
        f"{report.samples_per_s:,.0f} samples/s on {report.device} ({report.device_reason})"
        f" -> {out}"
    )


@critic_app.command("eval")
def evaluate(
    critic: Path = typer.Option(..., "--critic", help="Checkpoint to evaluate."),
    env: str = typer.Option("", "--env", help="Env id (default: the checkpoint's)."),
    states: int = typer.Option(200, min=1, help="Held-out states to score."),
    seed: int = typer.Option(10_000, min=0, help="First held-out seed."),
    min_rank: float = typer.Option(0.0, help="Exit 1 if the joint ranking is below this."),
    oracle: bool = typer.Option(False, "--oracle", help="Also roll out both actions for their "
                                "true returns (how often the expert really is better)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    strict: bool = typer.Option(False, "--strict-critic", help="Exit 1 if the critic is below "
                                "the quality floor ReAd's on-demand training uses."),
    save: bool = typer.Option(False, "--save-quality", help="Write the figures beside the "
                              "checkpoint (<name>.quality.json), where ReAd's checks read them."),
) -> None:
    """How often the critic ranks the expert's action above a random one."""
    from coopbench import envs
    from coopbench.core.io import write_json_atomic
    from coopbench.critics.critic import Critic
    from coopbench.critics.evaluate import EvalConfig
    from coopbench.critics.evaluate import evaluate as run_eval
    from coopbench.critics.resolve import figures_of, judge, quality_path

    model = Critic.load(critic)
    env_id = envs.registry.spec(env).id if env else model.meta["env_id"]
    report = run_eval(model, EvalConfig(env_id, states, seed, oracle=oracle))
    if as_json:
        print_json(report.to_json())
    else:
        per_agent = ", ".join(f"{a} {v:.1%}" for a, v in report.prefix_rank.items())
        console.print(
            f"{env_id}: expert joint action ranked above a random one in "
            f"{report.joint_rank:.1%} of {report.states} held-out states "
            f"(mean Q gap {report.mean_gap:+.3f}); per agent (ReAd-S prefixes): {per_agent}; "
            f"the expert's plan is accepted (within ReAd's margin of the best of "
            f"{EvalConfig.rivals} random plans) in {report.expert_acceptance:.1%}"
        )
        if report.agreement is not None:
            console.print(
                f"true returns (roll-outs): the expert's action is really better in "
                f"{report.expert_truly_better:.1%} of these states; the critic orders "
                f"{report.agreement:.1%} of the pairs as the true returns do"
            )
    if save:
        write_json_atomic(quality_path(critic), figures_of(report))
    if report.joint_rank < min_rank:
        raise typer.Exit(1)
    judge(figures_of(report), env_id, strict)
