"""Seeds and episode counts: parsing `--seeds` / a spec's `seeds`, and the bounds on both.

Counted before anything is expanded, so a typo (`0-9999999999`) is one line, not a full memory.
"""

from __future__ import annotations

from coopbench.core.errors import CoopbenchError

MAX_SEEDS = 1_000_000  # per run or matrix; more is a typo, and would not fit in memory
MAX_EPISODES = 1_000_000  # episodes one run or matrix may plan
SEED_LIMIT = 2**32  # seeds are 32-bit, as numpy's and the envs' seeding expect


class SeedsError(CoopbenchError):
    """A seed list that cannot be used; `why` is the reason without the option name."""

    def __init__(self, text: str, why: str) -> None:
        super().__init__(f"bad --seeds {text!r}: {why}")
        self.why = why


def check_seed_count(count: int) -> str | None:
    """Why `count` seeds are too many, or None."""
    if count > MAX_SEEDS:
        return f"{count:,} seeds; at most {MAX_SEEDS:,} per run"
    return None


def seed_ranges(text: str) -> list[range]:
    """`"0-2,7"` -> [range(0, 3), range(7, 8)], checked but not expanded (cheap at any size)."""
    ranges: list[range] = []
    count = 0
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi if sep else lo)
        except ValueError:
            raise SeedsError(text, "use a range like 0-9 or a list like 0,3,7") from None
        if last < first:
            raise SeedsError(text, f"the range {part} runs backwards")
        count += last - first + 1
        too_many = check_seed_count(count)
        if too_many:
            raise SeedsError(text, too_many)
        if last >= SEED_LIMIT:
            raise SeedsError(text, f"seeds must be below 2**32 ({SEED_LIMIT:,})")
        ranges.append(range(first, last + 1))
    if not ranges:
        raise SeedsError(text, "need at least one non-negative seed")
    return ranges


def parse_seeds(text: str) -> list[int]:
    """`"0-2"` -> [0, 1, 2]; `"0,5,7"` -> [0, 5, 7]; ranges and lists may mix (bounded by
    `MAX_SEEDS`, counted before anything is expanded)."""
    return [seed for r in seed_ranges(text) for seed in r]


def check_episode_count(count: int, what: str) -> None:
    """Refuse to plan more than `MAX_EPISODES` episodes (before any task is built)."""
    if count > MAX_EPISODES:
        raise CoopbenchError(f"{what}: {count:,} episodes; at most {MAX_EPISODES:,} per run "
                             "(split it into several run directories)")
