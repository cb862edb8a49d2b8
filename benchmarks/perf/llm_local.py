"""Embedded-model speed: prompt and generation tokens/s, and what a stable prefix buys.

Run: .venv/bin/python benchmarks/perf/llm_local.py [--calls 5] [--repeat 3] [--scoring-only]

Two ways to lay out the same ~800-token decision prompt, measured in the same run on the
same loaded model (llama.cpp reuses the KV cache of the longest prefix shared with the
previous call):

- prefix-stable: task, rules and action grammar first, the changing state last;
- prefix-varying: the changing state first, then the same task, rules and grammar.

Each call is a grammar-constrained joint-action choice (as planners make them). Token rates
come from llama.cpp's own counters (prompt tokens evaluated, tokens generated, their time).

Then scoring against generation, on the same prefix-stable decisions: one scoring pass
(log P of all 36 joint actions, the token tree of `coopbench.llm.token_tree`) and the four
passes of a calibrated decision (state shown/blanked x options forwards/reversed, as the
scored planners make them), against one grammar-constrained generation. The blanked passes
are the same at every step of a task and are remembered by the backend, so the calibrated
time is printed for a task's first step and for the steps after it (the ratio the target
is about).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from coopbench.llm import make

ACTIONS = ["up", "down", "left", "right", "stay", "interact"]
CHOICES = [f"NAME Alice ACTION {a} NAME Bob ACTION {b}" for a in ACTIONS for b in ACTIONS]

TASK = """You coordinate two cooks, Alice and Bob, in the Overcooked kitchen "cramped_room".
Goal: deliver as many onion soups as possible. A soup needs three onions in a pot; the pot
then cooks for 20 steps; a cooked soup is picked up with a dish and served at the window.

Kitchen layout (X counter, O onion dispenser, P pot, D dish dispenser, S serving window):
XXPXX
O   O
X   X
XDXSX

Rules:
1. Each step every cook takes exactly one action: up, down, left, right, stay, interact.
2. Moving into a counter or into the other cook leaves the cook in place, facing that way.
3. interact uses the tile the cook faces: take an onion or a dish from a dispenser, put an
   onion into a pot, pick up a cooked soup with a dish, place or take items on a counter,
   or serve a soup at the serving window.
4. A cook holds at most one item. Cooks cannot pass through each other.
5. Plan jointly: avoid both cooks waiting for the same tile; split the work.
"""
GRAMMAR = """Reply with exactly one line in this format and nothing else:
NAME Alice ACTION <action> NAME Bob ACTION <action>
where each <action> is one of: up, down, left, right, stay, interact.
Legal joint actions now:
""" + "\n".join(CHOICES)


def state(i: int) -> str:
    x_a, y_a, x_b, y_b = 1 + i % 3, 1 + (i // 3) % 2, 3 - i % 3, 2 - (i // 3) % 2
    held = ["nothing", "an onion", "a dish"]
    return (f"Step {i}. Alice is at ({x_a}, {y_a}) facing up and holds {held[i % 3]}. "
            f"Bob is at ({x_b}, {y_b}) facing left and holds {held[(i + 1) % 3]}. "
            f"The pot holds {i % 4} onions and is {'cooking' if i % 4 == 3 else 'idle'}. "
            f"Soups delivered so far: {i // 5}.")


def stable(i: int) -> list[dict[str, str]]:
    return [{"role": "system", "content": TASK + "\n" + GRAMMAR},
            {"role": "user", "content": "Current state:\n" + state(i)}]


def varying(i: int) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Current state:\n" + state(i) + "\n\n" + TASK},
            {"role": "user", "content": GRAMMAR}]


def run(model, layout, calls: int, offset: int) -> dict[str, float]:
    model.complete(layout(offset), choices=CHOICES, temperature=0.0)  # warm-up, not timed
    walls, evaluated, total, p_ms = [], 0, 0, 0.0
    for i in range(offset + 1, offset + 1 + calls):
        start = time.perf_counter()
        c = model.complete(layout(i), choices=CHOICES, temperature=0.0)
        walls.append(time.perf_counter() - start)
        evaluated += c.extra["prompt_tokens_evaluated"]
        total += c.usage.tokens_in
        p_ms += c.extra["prompt_eval_ms"]
    return {"wall_s": statistics.mean(walls), "evaluated": evaluated / calls,
            "prompt_tokens": total / calls, "prompt_ms": p_ms}


def reversed_options(i: int) -> list[dict[str, str]]:
    grammar = GRAMMAR.replace("\n".join(CHOICES), "\n".join(reversed(CHOICES)))
    return [{"role": "system", "content": TASK + "\n" + grammar},
            {"role": "user", "content": "Current state:\n" + state(i)}]


def blanked(messages: list[dict[str, str]], task: int = 0) -> list[dict[str, str]]:
    """The state hidden; the same prompt at every step of one task (episode)."""
    return [messages[0], {"role": "user", "content": f"Current state (episode {task}):\n"
                                                     "(not shown)"}]


def scoring(model, calls: int, offset: int, task: int = 0) -> dict[str, float]:
    """Seconds per decision: generation, one scoring pass, a calibrated (4-pass) decision."""
    # warm-ups, not timed: the scoring contexts, and the generation context's prompt prefix
    # (otherwise the first generation re-evaluates the whole prompt and flatters the ratio)
    model.score(stable(offset), CHOICES)
    model.complete(stable(offset), choices=CHOICES, temperature=0.0)
    out = {"generate": 0.0, "score": 0.0, "calibrated": 0.0, "agree": 0}
    firsts = []
    for i in range(offset + 1, offset + 1 + calls):
        start = time.perf_counter()
        text = model.complete(stable(i), choices=CHOICES, temperature=0.0).text
        out["generate"] += time.perf_counter() - start
        start = time.perf_counter()
        passes = []
        for layout in (stable, reversed_options):
            passes.append(model.score(layout(i), CHOICES))
            model.score(blanked(layout(i), task), CHOICES)
        firsts.append(time.perf_counter() - start)
        out["score"] += passes[0].latency_s  # the state shown, options forwards: one pass
        out["agree"] += int(CHOICES[passes[0].best()] == text)
    # the blanked passes are the same at every step of a task: only its first step pays them
    later = firsts[1:] or firsts
    out = {k: v / calls for k, v in out.items()}
    out["calibrated"] = sum(later) / len(later)
    out["calibrated_first"] = firsts[0]
    return out


def layouts(model, calls: int) -> None:
    """Prompt and generation rates; prefix-stable against prefix-varying decisions."""
    vary = run(model, varying, calls, offset=100)
    keep = run(model, stable, calls, offset=200)
    free = model.complete([{"role": "user", "content": "Write a short poem about soup."}],
                          max_tokens=96, temperature=0.0)
    full_prompt_rate = vary["evaluated"] * calls / (vary["prompt_ms"] / 1000)
    gen_rate = free.extra["generated_tokens"] / (free.extra["generation_ms"] / 1000)
    print(f"prompt   {full_prompt_rate:7.1f} tokens/s  (prefix-varying prompts, "
          f"{vary['prompt_tokens']:.0f} tokens each)")
    print(f"generate {gen_rate:7.1f} tokens/s  ({free.extra['generated_tokens']} tokens, "
          "free text)")
    for name, r in (("prefix-varying", vary), ("prefix-stable", keep)):
        print(f"{name:15s} {r['wall_s']:6.2f} s/decision  re-evaluated "
              f"{r['evaluated']:5.0f} of {r['prompt_tokens']:.0f} prompt tokens")
    print(f"speed-up of prefix-stable over prefix-varying: {vary['wall_s'] / keep['wall_s']:.2f}x")


def report_scoring(sc: dict[str, float]) -> None:
    print(f"generation      {sc['generate']:6.2f} s/decision  (grammar over {len(CHOICES)} plans)")
    print(f"scoring, 1 pass {sc['score']:6.2f} s/decision  (log P of all {len(CHOICES)}; "
          f"{sc['generate'] / sc['score']:.2f}x generation's speed; argmax = greedy reply in "
          f"{sc['agree']:.0%} of decisions)")
    print(f"scoring, calibrated (4 passes) {sc['calibrated_first']:6.2f} s at a task's first "
          f"step, {sc['calibrated']:6.2f} s/decision after it (blanked passes remembered)")
    print(f"calibrated/generation ratio {sc['calibrated'] / sc['generate']:.2f}x "
          f"(first step {sc['calibrated_first'] / sc['generate']:.2f}x; target <= 1.5x)")


def cpu_model() -> str:
    """The CPU's model name (Linux), for the figures' context."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5, help="measured calls per layout")
    parser.add_argument("--repeat", type=int, default=1,
                        help="scoring measurements in this process (each prints its ratio)")
    parser.add_argument("--scoring-only", action="store_true",
                        help="skip the prompt-layout measurements")
    args = parser.parse_args()
    if args.calls < 1 or args.repeat < 1:
        parser.error("--calls and --repeat must be >= 1")
    load_before = os.getloadavg()[0]
    model = make("local", cache=False)
    load = time.perf_counter()
    llama, _ = model.backend.llama()
    print(f"model    {model.model_id}")
    print(f"load     {time.perf_counter() - load:.2f} s   threads {llama.n_threads} "
          "(cores not busy at load; COOPBENCH_LOCAL_THREADS overrides)")

    if not args.scoring_only:
        layouts(model, args.calls)
    for rep in range(args.repeat):  # a new task each time: its first step pays the blanks
        sc = scoring(model, args.calls, offset=300 + 100 * rep, task=rep)
        report_scoring(sc)
    print(f"machine  {cpu_model()}, {os.cpu_count()} CPUs, 1-min load {load_before:.1f} before / "
          f"{os.getloadavg()[0]:.1f} after (other work on the machine slows every number)")


if __name__ == "__main__":
    main()
