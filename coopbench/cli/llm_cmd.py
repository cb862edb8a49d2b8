"""`coopbench llm ...`: check a model spec, serve the embedded model, inspect the cache."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
import warnings

import typer

from coopbench.cli._common import console, shown
from coopbench.core.errors import CoopbenchError, CoopbenchWarning
from coopbench.llm.backends import spec_help

llm_app = typer.Typer(help="Check model specs, serve the embedded model, manage the cache.",
                      no_args_is_help=True)

@llm_app.command()
def check(
    spec: str = typer.Argument(..., help=spec_help("Model spec")),
    refresh: bool = typer.Option(False, "--refresh",
                                 help="Probe the endpoint's capabilities again, ignoring the "
                                      "remembered answer."),
) -> None:
    """Send one short request (bypassing the cache); print model, latency and tokens/s, then
    what the model can do (constrained choice, scoring form) and where that came from."""
    from coopbench import llm

    model = llm.make(spec, cache=False)
    if hasattr(model.backend, "llama"):  # load the embedded model outside the timing
        loaded = time.perf_counter()
        model.backend.llama()
        console.print(f"load       {time.perf_counter() - loaded:.2f} s", highlight=False)
    messages = [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "Say that you are ready, in at most ten words."},
    ]
    start = time.perf_counter()
    completion = model.complete(messages, max_tokens=24, oracle=llm.Oracle("I am ready."))
    wall = time.perf_counter() - start
    usage = completion.usage
    rate = usage.tokens_out / wall if wall > 0 else 0.0
    lines = [
        f"model      {shown(completion.model)}" + ("  (simulated)" if model.simulated else ""),
        f"identity   {shown(model.model_id)}",
        f"reply      {shown(repr(completion.text.strip()))}",
        f"latency    {wall:.2f} s   attempts {max(completion.attempts, 1)}",
        f"tokens     {usage.tokens_in} in, {usage.tokens_out} out   {rate:.1f} tokens/s out",
    ]
    for line in lines + _capability_lines(model, refresh):
        console.print(line, highlight=False, soft_wrap=True)


def _capability_lines(model: object, refresh: bool) -> list[str]:
    """The capability table: declared (local, sim), or configured, remembered or probed."""
    with warnings.catch_warnings():  # the table says what the one-line notice would
        warnings.simplefilter("ignore", CoopbenchWarning)
        caps = model.capabilities(refresh=refresh)  # type: ignore[attr-defined]
    parts = getattr(getattr(model, "backend", None), "part_sources", {}) or {}

    def where(part: str) -> str:
        return f"   ({parts.get(part, caps.source)})"

    lines = [
        "capabilities",
        f"  constrained choice  {caps.constrained or 'none'}{where('constrained')}",
        f"  scoring             {caps.scoring}{where('scoring')}",
        f"  decoding: auto      {caps.auto if caps.constrained else 'free'}",
        f"  source              {caps.source}",
        f"  probed at           {caps.probed_at or '-'}",
    ]
    notes = [shown(n) for n in caps.notes] or ["-"]
    lines.append(f"  notes               {notes[0]}")
    lines.extend(f"                      {n}" for n in notes[1:])
    return lines


@llm_app.command()
def serve(
    port: int = typer.Option(8080, help="Port on 127.0.0.1."),
    model: str = typer.Option("local", help="local, local:<name> or local:<file.gguf>."),
    n_ctx: int = typer.Option(4096, help="Context size in tokens."),
    threads: int = typer.Option(0, help="CPU threads (0: cores not already busy)."),
) -> None:
    """Serve the embedded model over an OpenAI-compatible API on 127.0.0.1 (Ctrl-C stops)."""
    from coopbench.llm import parse
    from coopbench.llm.local import N_CTX_ENV, THREADS_ENV, LocalBackend

    parsed = parse(model)
    if parsed.scheme != "local":
        raise CoopbenchError(f"serve runs local models only, not {model!r}")
    if not 0 < port < 65536:
        raise CoopbenchError(f"bad --port {port}")
    if n_ctx < 64 or threads < 0:
        raise CoopbenchError("--n-ctx takes at least 64 tokens and --threads 0 or more")
    missing = [m for m in ("uvicorn", "fastapi") if importlib.util.find_spec(m) is None]
    if missing:
        raise CoopbenchError(f"serve needs {' and '.join(missing)}: "
                             "pip install 'llama-cpp-python[server]'")
    from coopbench.llm.serve import bind, create_app, run

    sock = bind(port)  # before loading the model: a port in use fails at once
    os.environ[N_CTX_ENV] = str(n_ctx)  # this process's model: load_llama reads them
    if threads:
        os.environ[THREADS_ENV] = str(threads)
    backend = LocalBackend.for_spec(parsed)
    backend.llama()
    app = create_app(backend)
    alias = backend.name
    for line in (f"serving {backend.path.name} on http://127.0.0.1:{port}/v1 as {alias!r}",
                 f"use it with:  --llm 'openai-compat:http://127.0.0.1:{port}/v1#{alias}'"):
        console.print(line, highlight=False, soft_wrap=True)
    sys.stdout.flush()
    run(app, sock)


@llm_app.command()
def cache(
    clear: bool = typer.Option(False, "--clear", help="Delete every cached response."),
) -> None:
    """Show where the response cache is and how many entries each model has."""
    from coopbench.llm import paths
    from coopbench.llm.cache import ResponseCache

    path = paths.cache_db()
    if clear:
        for suffix in ("", "-wal", "-shm"):
            candidate = path.with_name(path.name + suffix)
            if candidate.exists():
                candidate.unlink()
        console.print(f"cleared {path}")
        return
    if not path.exists():
        console.print(f"{path}: empty")
        return
    stats = ResponseCache(path).stats()
    console.print(f"{path}: {sum(stats.values())} entries")
    for model_id, count in sorted(stats.items()):
        console.print(f"  {count:8d}  {model_id}", highlight=False)


@llm_app.command()
def backends(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
) -> None:
    """List the spec schemes (built-in and plug-ins): forms, capabilities, help, package."""
    from rich.table import Table

    from coopbench.cli._common import print_json
    from coopbench.llm import backends as table

    entries = table.entries()
    if as_json:
        print_json([e.to_json() for e in entries])
        return
    out = Table(title=f"{len(entries)} LLM backends", box=None, pad_edge=False,
                title_justify="left")
    out.add_column("scheme", style="cyan", no_wrap=True)
    out.add_column("forms", overflow="fold")  # forms stay whole: they are what users type
    out.add_column("capabilities")
    out.add_column("help")
    out.add_column("source", style="dim", no_wrap=True)
    for e in entries:
        out.add_row(shown(e.scheme), "\n".join(shown(f) for f in e.forms), shown(e.caps_summary()),
                    shown(e.help), shown(e.source))
    console.print(out)
