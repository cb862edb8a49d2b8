"""`coopbench llm ...`: check a model spec, serve the embedded model, inspect the cache."""

from __future__ import annotations

import importlib.util
import os
import sys
import time

import typer

from coopbench.cli._common import console, shown
from coopbench.core.errors import CoopbenchError

llm_app = typer.Typer(help="Check model specs, serve the embedded model, manage the cache.",
                      no_args_is_help=True)

@llm_app.command()
def check(
    spec: str = typer.Argument(..., help="Model spec: local, local:<name>, local:<file.gguf>, "
                               "openai:<model>, "
                               "openai-compat:<base_url>#<model>, sim:<policy>?..."),
) -> None:
    """Send one short request (bypassing the cache); print model, latency and tokens/s."""
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
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)


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
