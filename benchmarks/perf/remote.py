"""Scoring decisions per second: the embedded token tree against `coopbench llm serve`.

Run: .venv/bin/python benchmarks/perf/remote.py [--calls 5] [--port 18089]

The same model (the packaged default), the same decisions (log P of 36 joint actions after an
~800-token prompt whose state changes each step, as `llm_local.py` builds them), in the same
run: embedded (`local`, one token-tree pass per decision), then through the HTTP server with
each scoring form a client can use: `batched` (one request holding every candidate prompt)
and `per-prompt` (one request per candidate, sent concurrently up to the endpoint's
concurrency). The server is started here as a subprocess and measured only while the embedded
model is idle, so the two never share the cores. Prints decisions/s and the ratio to the
embedded figure, and the largest score difference (nats) between the two paths.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from llm_local import CHOICES, cpu_model, stable  # noqa: E402  (the same decisions)

from coopbench.llm import make  # noqa: E402
from coopbench.llm.config import LLMConfig  # noqa: E402


def serve(port: int) -> tuple[subprocess.Popen, str]:
    """`coopbench llm serve` on `port`; returns the process and the spec it prints."""
    proc = subprocess.Popen([sys.executable, "-m", "coopbench", "llm", "serve", "--port",
                             str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    spec = ""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = proc.stdout.readline() if proc.stdout else ""
        if "--llm" in line:
            spec = line.split("--llm", 1)[1].strip().strip("'")
            break
        if proc.poll() is not None:
            sys.exit(f"llm serve exited with {proc.returncode}")
    while time.monotonic() < deadline:  # ready when it answers
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2).read()
            return proc, spec
        except OSError:
            time.sleep(0.5)
    proc.kill()
    sys.exit("llm serve did not answer within 300 s")


def decisions(model, calls: int, offset: int) -> tuple[float, list[tuple[float, ...]]]:
    """Seconds per decision over `calls` decisions (after one untimed warm-up), and scores."""
    model.score(stable(offset), CHOICES)
    scores, start = [], time.perf_counter()
    for i in range(offset + 1, offset + 1 + calls):
        scores.append(model.score(stable(i), CHOICES).logprobs)
    return (time.perf_counter() - start) / calls, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5, help="timed decisions per path")
    parser.add_argument("--port", type=int, default=18089)
    parser.add_argument("--concurrency", type=int, default=4,
                        help="in-flight requests for the per-prompt form")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    embedded = make("local", cache=False)
    embedded.backend.llama()  # loaded outside the timing
    local_s, local_scores = decisions(embedded, args.calls, offset=500)
    print(f"embedded token tree  {1 / local_s:6.2f} decisions/s  ({local_s:.2f} s each, "
          f"{len(CHOICES)} candidates)")
    proc, spec = serve(args.port)
    try:
        base_url = spec.split("#", 1)[0].removeprefix("openai-compat:")
        for form in ("batched", "per-prompt"):
            config = LLMConfig(endpoints={base_url: {"scoring": form, "constrain": "none",
                                                     "concurrency": args.concurrency}})
            served = make(spec, cache=False, config=config)
            seconds, scores = decisions(served, args.calls, offset=500)
            gap = max(abs(a - b) for x, y in zip(local_scores, scores, strict=True)
                      for a, b in zip(x, y, strict=True))
            same = sum(max(range(len(x)), key=x.__getitem__) == max(range(len(y)),
                                                                     key=y.__getitem__)
                       for x, y in zip(local_scores, scores, strict=True))
            print(f"served, {form:10s}  {1 / seconds:6.2f} decisions/s  ({seconds:.2f} s each; "
                  f"{local_s / seconds:.2f}x the embedded rate; scores within {gap:.4f} nats, "
                  f"same argmax in {same}/{args.calls})")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"machine  {cpu_model()}, {os.cpu_count()} CPUs, 1-min load {load_before:.1f} before / "
          f"{os.getloadavg()[0]:.1f} after (other work on the machine slows every number)")


if __name__ == "__main__":
    main()
