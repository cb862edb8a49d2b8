"""`coopbench credit collect|fit|train|plot`: LLM-guided credit assignment (docs/credit.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from coopbench.cli._common import console
from coopbench.core.errors import CoopbenchError, Interrupted
from coopbench.core.runlock import run_lock, started
from coopbench.llm.backends import spec_help

if TYPE_CHECKING:
    from coopbench.credit.ppo import Trainer

credit_app = typer.Typer(
    help="LLM-guided credit assignment: rank states with an LLM, fit per-agent potentials, "
    "train PPO on the shaped rewards.",
    no_args_is_help=True,
)


def _kwargs(text: str) -> dict:
    """`--env-kwargs` as a JSON object, or one clear error."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CoopbenchError(f"--env-kwargs is not valid JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise CoopbenchError("--env-kwargs must be a JSON object, e.g. '{\"horizon\": 200}'")
    return value


@credit_app.command()
def collect(
    env: str = typer.Option(..., "--env", help="Env id, e.g. overcooked/cramped_room-v0."),
    llm: str = typer.Option(..., "--llm", help=spec_help()),
    out: Path = typer.Option(..., "--out", help="Directory for preferences and the call log."),
    pairs: int = typer.Option(500, "--pairs", help="Consecutive state pairs to label."),
    repeats: int = typer.Option(5, "--repeats", help="Answers per pair and agent (K)."),
    explore: str = typer.Option("0.5", "--explore", help="P(random action) in the rollouts; "
                                "1 = random policy, 0 = the scripted expert; a comma list: "
                                "episodes cycle through the values."),
    seed: int = typer.Option(0, "--seed"),
    temperature: float = typer.Option(0.7, "--temperature", help="Sampling temperature."),
    concurrency: int = typer.Option(8, "--concurrency", help="LLM calls in flight at once."),
    tie_tolerance: float = typer.Option(1e-6, "--tie-tolerance",
                                        help="Simulated judge only: progress differences up to "
                                        "this count as SAME (e.g. 0.25 ignores mere walking in "
                                        "Overcooked; docs/credit.md)."),
    gaps: str = typer.Option("1", "--gaps", help="Steps between the two states of a pair; a "
                             "comma list: each pair draws one (1 = consecutive states)."),
    env_kwargs: str = typer.Option("", "--env-kwargs", help="JSON object of env arguments."),
) -> None:
    """Ask the LLM, per agent and K times, which of two consecutive states is better."""
    from coopbench import envs
    from coopbench import llm as llm_mod
    from coopbench.credit.preferences import CALLS, CollectConfig
    from coopbench.credit.preferences import collect as run_collect

    spec = envs.registry.spec(env)
    try:
        levels = tuple(float(p) for p in explore.split(","))
    except ValueError:
        raise CoopbenchError("--explore takes probabilities, e.g. 0.5 or 0.3,0.6,0.9") from None
    try:
        steps = tuple(int(g) for g in gaps.split(","))
    except ValueError:
        raise CoopbenchError("--gaps takes step counts, e.g. 1 or 1,5,25") from None
    config = CollectConfig(spec.id, pairs=pairs, repeats=repeats, explore=levels, seed=seed,
                           temperature=temperature, concurrency=concurrency,
                           tie_tolerance=tie_tolerance, gaps=steps, env_kwargs=_kwargs(env_kwargs))
    with run_lock(out, "coopbench credit collect", results=(CALLS,)):
        model = llm_mod.make(llm, call_log=out / CALLS)
        started(out)
        with console.status(f"ranking {pairs} pairs × {repeats} with {model.spec}"):
            meta = run_collect(config, model, out)
    sim = " [yellow](simulated)[/yellow]" if meta["llm"]["simulated"] else ""
    console.print(
        f"{meta['pairs']} pairs · {meta['queries']} LLM queries ({meta['cache_hits']} cached)"
        f"{sim} · agreement {meta['mean_agreement']:.2f} · "
        f"answers matching the progress measure {meta['mean_correct_answers']:.2f} → {out}"
    )


@credit_app.command()
def fit(
    prefs: Path = typer.Option(..., "--prefs", help="Directory written by `credit collect`."),
    out: Path = typer.Option(..., "--out", help="Directory for the potential checkpoint."),
    shared: bool = typer.Option(False, "--shared/--per-agent",
                                help="One network with an agent id, or one per agent."),
    hidden: int = typer.Option(128, "--hidden"),
    steps: int = typer.Option(12000, "--steps", help="Gradient steps."),
    lr: float = typer.Option(2e-3, "--lr"),
    ignore_inputs: str = typer.Option("", "--ignore-inputs",
                                      help="Comma-separated observation indices Φ must ignore "
                                      "(clock-like inputs are dropped anyway)."),
    standardise: bool = typer.Option(True, "--standardise/--raw-inputs",
                                     help="Centre and scale inputs by the pairs' statistics."),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads (be kind: 1)."),
) -> None:
    """Fit potentials Φ_i with the confidence-weighted Bradley-Terry loss."""
    import torch

    from coopbench.credit import potential, preferences

    torch.set_num_threads(max(1, threads))
    arrays, meta = preferences.load(prefs)
    try:
        ignored = tuple(int(i) for i in ignore_inputs.split(",") if i.strip())
    except ValueError:
        raise CoopbenchError("--ignore-inputs takes comma-separated integers") from None
    config = potential.FitConfig(hidden=hidden, shared=shared, steps=steps, lr=lr, seed=seed,
                                 ignore_inputs=ignored, standardise=standardise)
    net, report = potential.fit(arrays, config)
    with run_lock(out, "coopbench credit fit"):
        potential.save(net, out, {
            "env_id": meta["env_id"], "features_version": meta["features_version"],
            "agents": meta["agents"], "fit": potential.fit_config_dict(config), "report": report,
            "preferences": {"dir": str(prefs), "llm": meta["llm"], "pairs": meta["pairs"],
                            "queries": meta["queries"], "repeats": meta["config"]["repeats"]},
        })
    rho = report.get("spearman_with_progress") or []
    rho_text = ", ".join("-" if r is None else f"{r:.2f}" for r in rho)
    acc = report["label_accuracy"]
    console.print(
        f"fitted {'shared' if shared else 'per-agent'} potentials on {report['pairs']} pairs · "
        f"held-out label accuracy {'-' if acc is None else f'{acc:.2f}'} · "
        f"rank correlation with progress ({rho_text}) → {out}", markup=False
    )


@credit_app.command()
def train(
    env: str = typer.Option(..., "--env", help="Env id."),
    out: Path = typer.Option(..., "--out", help="Run directory (curves, checkpoint, plot)."),
    reward: str = typer.Option("sparse", "--reward", help="sparse | hand | llm"),
    potential: str = typer.Option("", "--potential", help="Potential dir (--reward llm)."),
    shaping_scale: float = typer.Option(1.0, "--shaping-scale", help="Multiplies the shaping."),
    shaping_gamma: float = typer.Option(1.0, "--shaping-gamma",
                                        help="γ' in γ'Φ(s')−Φ(s): 1 = plain difference; "
                                        "negative = the PPO discount."),
    shaping_anneal: int = typer.Option(0, "--shaping-anneal",
                                       help="Env steps over which the shaping fades to 0 "
                                       "(0 = never)."),
    steps: int = typer.Option(200_000, "--steps", help="Total environment steps."),
    num_envs: int = typer.Option(8, "--envs", help="Env copies stepped together."),
    num_steps: int = typer.Option(128, "--rollout", help="Steps per copy per update."),
    lr: float = typer.Option(3e-4, "--lr"),
    ent_coef: float = typer.Option(0.01, "--ent-coef"),
    gamma: float = typer.Option(0.99, "--gamma"),
    gae_lambda: float = typer.Option(0.95, "--gae-lambda"),
    epochs: int = typer.Option(4, "--epochs", help="PPO epochs per update."),
    minibatches: int = typer.Option(4, "--minibatches"),
    hidden: int = typer.Option(64, "--hidden"),
    reward_scale: float = typer.Option(1.0, "--reward-scale"),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda. auto times a "
                               "few updates on the CPU and on CUDA (when present) and takes "
                               "the faster; device.json in the run records it."),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads (be kind: 1)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint."),
    env_kwargs: str = typer.Option("", "--env-kwargs", help="JSON object of env arguments."),
) -> None:
    """Independent PPO (shared parameters) with sparse, hand-shaped or LLM-potential rewards."""
    import torch

    from coopbench import envs
    from coopbench.credit.curves import CURVES
    from coopbench.credit.ppo import CHECKPOINT, TrainConfig, Trainer

    torch.set_num_threads(max(1, threads))
    spec = envs.registry.spec(env)
    config = TrainConfig(
        spec.id, reward=reward, potential=potential, shaping_scale=shaping_scale,
        shaping_gamma=shaping_gamma, shaping_anneal=shaping_anneal, total_steps=steps,
        num_envs=num_envs, num_steps=num_steps,
        lr=lr, ent_coef=ent_coef, gamma=gamma, gae_lambda=gae_lambda, update_epochs=epochs,
        minibatches=minibatches, hidden=hidden, reward_scale=reward_scale, seed=seed, device=device,
        env_kwargs=_kwargs(env_kwargs),
    )
    with run_lock(out, "coopbench credit train", results=(CURVES, CHECKPOINT)):
        _train(Trainer(config, out, resume=resume, log=lambda m: console.print(f"[dim]{m}")))


def _train(trainer: Trainer) -> None:
    """Train with a line per update; Ctrl-C (or SIGTERM) says how to resume."""
    out = trainer.run_dir
    started(out)

    def show(row: dict) -> None:
        metric = "soups" if "soups" in row else "return"
        text = (f"{metric} {row[metric]:.2f} · success {row['success']:.2f}"
                if row.get("episodes") else "no episode finished")
        console.print(
            f"update {row['update']:>4} · {row['env_steps']:>9,} steps · {text} · "
            f"{row['steps_per_s']:.0f} steps/s",
            highlight=False,
        )

    _set_status(out, "running")
    try:
        result = trainer.train(on_update=show)
    except KeyboardInterrupt:
        _set_status(out, "interrupted")
        raise Interrupted(
            f"interrupted at update {trainer.update}; continue with the same command and --resume"
        ) from None
    _set_status(out, "complete")
    console.print(f"done: {result['env_steps']:,} env steps in {result['wall_s']:.0f}s on "
                  f"{result['device']} → {out}/curves.png")


def _set_status(run_dir: Path, status: str) -> None:
    """Say in the run's manifest whether it is running, complete or interrupted."""
    from coopbench.core.io import write_json_atomic
    from coopbench.core.saved import read_json

    path = run_dir / "manifest.json"
    manifest = read_json(path, "run manifest")
    if isinstance(manifest, dict):
        write_json_atomic(path, {**manifest, "status": status})


def _steps(value: int | None) -> str:
    return "never" if value is None else f"{value:,}"


@credit_app.command()
def plot(
    runs: list[str] = typer.Argument(..., help="LABEL=RUN_DIR[,RUN_DIR...] per curve group."),
    out: Path = typer.Option(..., "--out", help="PNG file."),
    metric: str = typer.Option("return", "--metric", help="return | success | soups | ..."),
    threshold: float = typer.Option(None, "--threshold", help="Draw and report this level."),
    title: str = typer.Option("", "--title"),
    summary: Path = typer.Option(None, "--summary", help="Also write per-run numbers as JSON."),
) -> None:
    """Plot learning curves (mean and min-max over seeds) of several groups of runs."""
    from coopbench.core.io import write_json_atomic
    from coopbench.credit.curves import load_rows, mean_crossing, run_summary
    from coopbench.credit.curves import plot as draw

    groups: dict[str, list[Path]] = {}
    for item in runs:
        label, sep, dirs = item.partition("=")
        if not sep or not dirs:
            raise CoopbenchError(f"expected LABEL=RUN_DIR[,RUN_DIR...], got {item!r}")
        paths = [Path(d) for d in dirs.split(",")]
        for p in paths:
            if not load_rows(p):
                raise CoopbenchError(f"{p} has no learning curve (curves.jsonl)")
        groups[label] = paths
    draw(groups, metric, out, threshold=threshold, title=title)
    numbers: dict = {"metric": metric, "threshold": threshold, "groups": {}}
    for label, paths in groups.items():
        runs_out = [run_summary(p, metric, threshold) for p in paths]
        numbers["groups"][label] = runs_out
        if threshold is not None:
            mean = mean_crossing(paths, metric, threshold)
            numbers.setdefault("mean_first_crossing", {})[label] = mean
            text = ", ".join(_steps(r["first_crossing"]) for r in runs_out)
            totals = ", ".join(f"{r['env_steps']:,}" for r in runs_out)
            console.print(f"{label}: first reaches {metric} ≥ {threshold} at ({text}) steps "
                          f"(of {totals}); the mean over runs at {_steps(mean)}", markup=False)
    if summary is not None:
        write_json_atomic(summary, numbers)
    console.print(f"→ {out}")
