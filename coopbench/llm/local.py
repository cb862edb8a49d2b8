"""The embedded backend: llama.cpp (llama-cpp-python) in this process.

One `Llama` object per model file per process, reused by every caller: llama-cpp-python
keeps the KV cache of the previous prompt and re-evaluates only what follows the longest
shared prefix, so prompts laid out as stable prefix + changing state cost little after the
first. Calls on one model are serialised (a lock), which is also what the 2-core target
wants. With `choices` the reply is constrained by a GBNF grammar to exactly one of them.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from coopbench.core.errors import CoopbenchError
from coopbench.llm import paths
from coopbench.llm.base import Message
from coopbench.llm.capabilities import Capabilities
from coopbench.llm.grammar import choice_grammar
from coopbench.llm.model_files import DEFAULT, assemble, verified_sha256
from coopbench.llm.request import Reply, Request, ScoreReply, ScoreRequest
from coopbench.llm.spec import ModelSpec
from coopbench.llm.token_tree import TokenTreeScorer

N_CTX_ENV = "COOPBENCH_LOCAL_N_CTX"
THREADS_ENV = "COOPBENCH_LOCAL_THREADS"

_MODELS: dict[str, tuple[Any, threading.Lock]] = {}
_MODELS_LOCK = threading.Lock()


def _llama_version() -> str:
    return metadata.version("llama-cpp-python")


@contextlib.contextmanager
def _quiet_stderr():
    """llama.cpp prints load-time lines to fd 2 even with verbose=False; hide them."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def load_llama(path: Path, n_ctx: int | None = None) -> tuple[Any, threading.Lock]:
    """The process-wide `Llama` for `path` (loaded on first use) and the lock guarding it."""
    key = str(path.resolve())
    with _MODELS_LOCK:
        if key not in _MODELS:
            from llama_cpp import Llama

            from coopbench.llm.llama_params import safe_weight_layout

            n_ctx = n_ctx or int(os.environ.get(N_CTX_ENV, "4096"))
            threads = int(os.environ.get(THREADS_ENV, "0")) or default_threads()
            try:
                with _quiet_stderr(), safe_weight_layout():
                    llama = Llama(model_path=key, n_ctx=n_ctx, n_batch=512, n_threads=threads,
                                  n_threads_batch=threads, verbose=False)
            except (ValueError, RuntimeError) as exc:
                raise CoopbenchError(f"llama.cpp cannot load {path}: {exc}") from None
            _MODELS[key] = (llama, threading.Lock())
            if len(_MODELS) == 1:
                atexit.register(_close_all)
        return _MODELS[key]


def default_threads() -> int:
    """CPU threads for llama.cpp: the cores other processes are not using now, 1 to 8.

    llama.cpp's threads wait for each other at every layer; on an oversubscribed machine
    two threads ran 5-10x slower than one (measured on 2 cores at load 3-5), so a busy
    machine gets fewer threads. What is busy is sampled now, not read from the 1-minute
    load average: that average still holds the install that ran just before `make demo`
    and this process's own start-up, and it made an idle 2-core machine run on one thread
    (prompt evaluation 108 instead of 220 tokens/s). `COOPBENCH_LOCAL_THREADS` overrides.
    """
    cpus = _usable_cpus()
    busy = _busy_elsewhere(cpus)
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except OSError:
            busy = 0.0
    return threads_for(len(cpus), busy, _pool_size)


_pool_size = 1  # processes of one pool that load a model at once (`share_cores_with`)


def share_cores_with(processes: int) -> None:
    """This process is one of `processes` pool workers: its model gets its share of the free
    cores. Workers load their models together, so each would see the others' cores idle."""
    global _pool_size
    _pool_size = max(1, processes)


def threads_for(cpus: int, busy_elsewhere: float, sharers: int = 1) -> int:
    """The thread count for `cpus` usable cores of which `busy_elsewhere` are taken, shared by
    `sharers` processes."""
    return max(1, min(8, cpus, round((cpus - busy_elsewhere) / max(1, sharers))))


def _usable_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:
        return list(range(os.cpu_count() or 1))


def _busy_elsewhere(cpus: Sequence[int], window_s: float = 0.3) -> float | None:
    """Cores kept busy by other processes over a short window: the busy time /proc/stat
    counts on this process's cores minus this process's own CPU time. None without /proc."""
    first = _busy_seconds(cpus)
    if first is None:
        return None
    own, start = time.process_time(), time.monotonic()
    time.sleep(window_s)
    second = _busy_seconds(cpus)
    if second is None:
        return None
    elapsed = time.monotonic() - start
    return max(0.0, (second - first - (time.process_time() - own)) / elapsed)


def _busy_seconds(cpus: Sequence[int]) -> float | None:
    """Seconds the given cores have spent busy since boot, from /proc/stat."""
    wanted = {f"cpu{n}" for n in cpus}
    try:
        lines = Path("/proc/stat").read_text().splitlines()
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None
    busy = 0
    for line in lines:
        name, *fields = line.split()
        if name in wanted:  # user nice system idle iowait irq softirq steal ...
            values = [int(f) for f in fields[:8]]
            busy += sum(values) - values[3] - values[4]
    return busy / ticks


def _forget_after_fork() -> None:
    """A forked child must not share the parent's llama.cpp context: it loads its own."""
    global _MODELS_LOCK
    _MODELS.clear()
    _SCORERS.clear()
    _MEMOS.clear()
    _MODELS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def _close_all() -> None:
    """Free models before interpreter teardown (llama-cpp's __del__ fails that late)."""
    for pool in _SCORERS.values():
        for scorer in pool:
            with contextlib.suppress(Exception):
                scorer.close()
    _SCORERS.clear()
    _MEMOS.clear()
    with _MODELS_LOCK:
        for llama, _ in _MODELS.values():
            with contextlib.suppress(Exception):
                llama.close()
        _MODELS.clear()


@dataclass
class Echoed:
    """One echoed prompt: its tokens' bytes and log P of each (None for the first)."""

    pieces: list[bytes]
    logprobs: list[float | None]


class LocalBackend:
    """llama.cpp on a GGUF file: the packaged default or a user's own."""

    simulated = False
    cacheable = True

    def __init__(self, path: Path, model_id: str, name: str) -> None:
        self.path = path
        self.model_id = model_id
        self.name = name

    @classmethod
    def for_spec(cls, spec: ModelSpec) -> LocalBackend:
        """A packaged model (`local`, `local:<name>`: assembled and verified) or a user's GGUF."""
        from coopbench.llm.model_files import NAMED, named

        if not spec.path:
            packaged = named(spec.model) if spec.model else DEFAULT
            if packaged is None:
                raise CoopbenchError(f"unknown packaged model {spec.model!r}; "
                                     f"known: {', '.join(NAMED)}")
            path = assemble(packaged)
            return cls(path, f"local:{packaged.name}@sha256:{packaged.sha256[:16]}"
                             f"+llama-cpp-python=={_llama_version()}", packaged.name)
        path = Path(spec.path).expanduser()
        if path.is_dir():
            raise CoopbenchError(f"model file {spec.path} is a directory, not a GGUF file")
        if not path.is_file():
            hint = ("" if spec.path.lower().endswith(".gguf") or "/" in spec.path else
                    f" (and it is not a packaged model name: {', '.join(NAMED)})")
            raise CoopbenchError(f"model file {spec.path} does not exist{hint}")
        try:
            with open(path, "rb") as fh:
                magic = fh.read(4)
        except OSError as exc:
            raise CoopbenchError(f"cannot read model file {spec.path}: {exc.strerror}") from None
        if magic != b"GGUF":
            raise CoopbenchError(f"{spec.path} is not a GGUF file (it lacks the GGUF magic)")
        digest = verified_sha256(path, stamp_dir=paths.cache_root() / "gguf-hashes")
        return cls(path, f"local:{path.name}@sha256:{digest[:16]}"
                         f"+llama-cpp-python=={_llama_version()}", path.stem)

    def llama(self) -> tuple[Any, threading.Lock]:
        return load_llama(self.path)

    def capabilities(self, refresh: bool = False) -> Capabilities:
        return Capabilities(constrained="native", scoring="token-tree")

    def generate(self, request: Request) -> Reply:
        out, extra = self.chat(request.messages, temperature=request.temperature,
                               max_tokens=request.max_tokens, seed=request.sampling_seed(),
                               choices=request.choices)
        usage = out.get("usage") or {}
        choice = out["choices"][0]
        return Reply(
            text=choice["message"].get("content") or "",
            tokens_in=int(usage.get("prompt_tokens", 0)),
            tokens_out=int(usage.get("completion_tokens", 0)),
            model=self.name,
            extra=extra,
        )

    def chat(self, messages: Sequence[Message], *, temperature: float, max_tokens: int,
             seed: int, choices: Sequence[str] | None = None,
             grammar: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """One chat completion on the shared `Llama`: (llama's response, extra counters).

        `seed` is llama's sampling seed as is (the embedded path passes
        `Request.sampling_seed()`, `llm serve` the seed a client sent), so a served reply
        is the very llama call the embedded backend makes. `choices` constrains the reply
        to one of them (and makes room for the longest); `grammar` is a GBNF text as is.
        """
        llama, lock = self.llama()
        kwargs: dict[str, Any] = {
            "messages": [dict(m) for m in messages],
            "temperature": temperature,
            "max_tokens": max_tokens,
            "seed": seed,
        }
        with lock:
            if choices is not None or grammar is not None:
                from llama_cpp import LlamaGrammar

                text = choice_grammar(choices) if choices is not None else grammar
                if choices is None and not _grammar_parses(llama, text):
                    raise CoopbenchError("the grammar does not parse (GBNF with a `root` rule)")
                kwargs["grammar"] = LlamaGrammar.from_string(text, verbose=False)
            if choices is not None:
                longest = max(len(llama.tokenize(c.encode("utf-8"), add_bos=False))
                              for c in choices)
                kwargs["max_tokens"] = max(max_tokens, longest + 2)
            before = perf_counters(llama)
            try:
                out = llama.create_chat_completion(**kwargs)
            except ValueError as exc:  # e.g. the prompt exceeds the context window
                raise CoopbenchError(f"{self.name}: {str(exc).splitlines()[0]} "
                                     f"(set {N_CTX_ENV} for a larger context)") from None
            after = perf_counters(llama)
        extra: dict[str, Any] = {"finish_reason": out["choices"][0].get("finish_reason"),
                                 "threads": _threads_of(llama)}
        if before and after:  # what llama.cpp really evaluated: the prefix reuse made visible
            extra.update({k: round(after[k] - before[k], 3) for k in after})
        return out, extra

    def score(self, request: ScoreRequest) -> ScoreReply:
        """log P(candidate | prompt) from the model's own token probabilities (token tree).

        A pass whose exact prompt and candidate tokens were scored before is answered from
        memory (`_remembered`): calibrated scoring's blanked-state passes repeat at every
        step of a task, and the response cache misses them (its key holds the step's seed).
        """
        llama, lock = self.llama()
        with lock:
            prompt_text, end = _render_prompt(llama, request.messages)
            prompt = llama.tokenize(prompt_text.encode("utf-8"), add_bos=False, special=True)
            candidates = [
                [*llama.tokenize(c.encode("utf-8"), add_bos=False, special=False), end]
                for c in request.candidates
            ]
            memo = _remembered(llama)
            key = (tuple(prompt), tuple(tuple(c) for c in candidates))
            extra: dict[str, Any] = {"decodes": 0, "remembered": key in memo}
            if key in memo:
                memo.move_to_end(key)
                logprobs = list(memo[key])
            else:
                logprobs = self._score_tokens(llama, prompt, candidates, extra)
                memo[key] = tuple(logprobs)
                while len(memo) > REMEMBERED_SCORES:
                    memo.popitem(last=False)
        return ScoreReply(logprobs=logprobs, tokens_in=len(prompt),
                          tokens_out=sum(len(c) for c in candidates), model=self.name,
                          extra=extra)

    def echo(self, texts: Sequence[str]) -> list[Echoed]:
        """Every token of each raw prompt text with log P(token | what precedes it).

        The texts are tokenized as `score` tokenizes a rendered prompt (special tokens
        parsed, no BOS added) and evaluated on the scoring context that shares the longest
        prefix, split where the last assistant turn opens (`score` splits prompt from
        candidates there), so the log-probabilities over a reply add up to `score`'s.
        """
        llama, lock = self.llama()
        with lock:
            prompts = [llama.tokenize(t.encode("utf-8"), add_bos=False, special=True)
                       for t in texts]
            if not all(prompts):
                raise CoopbenchError("an empty prompt has no tokens to echo")
            common = os.path.commonprefix(prompts)
            split = _reply_start(llama, common)
            scorer = _scorer(llama, common[:split])
            try:
                logprobs = scorer.echo(prompts, split)
            except ValueError as exc:
                raise CoopbenchError(f"{self.name}: {exc} (serve with a larger --n-ctx)") \
                    from None
            return [Echoed([_piece(llama, t) for t in tokens], lps)
                    for tokens, lps in zip(prompts, logprobs, strict=True)]

    def _score_tokens(self, llama: Any, prompt: list[int], candidates: list[list[int]],
                      extra: dict[str, Any]) -> list[float]:
        """One scoring pass on the scoring context that best shares the prompt's prefix."""
        scorer = _scorer(llama, prompt)
        decodes = scorer.decodes
        before = perf_counters(scorer)
        try:
            logprobs = scorer.score(prompt, candidates)
        except ValueError as exc:
            raise CoopbenchError(f"{self.name}: {exc} (set {N_CTX_ENV} for a larger "
                                 "context)") from None
        after = perf_counters(scorer)
        extra["decodes"] = scorer.decodes - decodes
        extra["threads"] = _threads_of(llama)
        if before and after:
            extra.update({k: round(after[k] - before[k], 3) for k in after})
        return logprobs


REPLY_OPENS = "<|im_start|>assistant\n"  # where `_render_prompt`'s prompts end (ChatML)


def _reply_start(llama: Any, tokens: list[int]) -> int:
    """Where the last ChatML assistant turn opens in `tokens` (just after its header), or
    len(tokens) when no header is there."""
    header = llama.tokenize(REPLY_OPENS.encode("utf-8"), add_bos=False, special=True)
    for end in range(len(tokens), len(header) - 1, -1):
        if tokens[end - len(header) : end] == header:
            return end
    return len(tokens)


def _piece(llama: Any, token: int) -> bytes:
    """The bytes a token stands for (special tokens as their text)."""
    import ctypes

    import llama_cpp

    buf = ctypes.create_string_buffer(256)
    n = llama_cpp.llama_token_to_piece(llama._model.vocab, token, buf, len(buf), 0, True)
    return buf.raw[: max(n, 0)]


def _grammar_parses(llama: Any, text: str) -> bool:
    """Whether llama.cpp accepts the GBNF `text` (an unparsable one would crash sampling)."""
    import llama_cpp

    with _quiet_stderr():
        sampler = llama_cpp.llama_sampler_init_grammar(llama._model.vocab, text.encode("utf-8"),
                                                       b"root")
    if not sampler:
        return False
    llama_cpp.llama_sampler_free(sampler)
    return True


REMEMBERED_SCORES = 1024  # scoring passes remembered per model (prompt + candidates tokens)
_MEMOS: dict[int, OrderedDict[tuple, tuple[float, ...]]] = {}


def _remembered(llama: Any) -> OrderedDict[tuple, tuple[float, ...]]:
    """The scores already computed on `llama`, least recently used first."""
    return _MEMOS.setdefault(id(llama), OrderedDict())


SCORING_CONTEXTS = 3  # calibrated scoring alternates prompt variants; each keeps its prefix
_SCORERS: dict[int, list[TokenTreeScorer]] = {}


def _scorer(llama: Any, prompt: list[int]) -> TokenTreeScorer:
    """The scoring context whose cached prompt shares the longest prefix with `prompt`.

    Calibrated scoring alternates prompt variants (state shown or blanked, options forwards
    or reversed); with one context each variant would evict the other's prefix. A small
    pool keeps them apart: a new prompt goes to the best match, a poor match (under half
    the prompt) to a fresh or the least recently used context.
    """
    pool = _SCORERS.setdefault(id(llama), [])
    best = max(pool, key=lambda sc: sc.shared_prefix(prompt), default=None)
    if best is None or (best.shared_prefix(prompt) < len(prompt) // 2
                        and len(pool) < SCORING_CONTEXTS):
        try:
            best = TokenTreeScorer(llama)
        except (ValueError, RuntimeError, AttributeError) as exc:
            raise CoopbenchError(f"llama.cpp cannot open a scoring context: {exc}") from None
        pool.append(best)
    elif best.shared_prefix(prompt) < len(prompt) // 2:
        best = min(pool, key=lambda sc: sc.last_used)
    best.last_used = next(_CLOCK)
    return best


_CLOCK = itertools.count()


def _render_prompt(llama: Any, messages: tuple[dict[str, str], ...]) -> tuple[str, int]:
    """The prompt text a chat completion would start from, and the end-of-turn token.

    Uses the GGUF's own chat template (as `create_chat_completion` does), so scores and
    generated replies condition on the same text.
    """
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        raise CoopbenchError("this GGUF has no chat template: scoring needs one")
    eos = llama.token_eos()
    formatter = Jinja2ChatFormatter(
        template=template,
        eos_token=llama._model.token_get_text(eos),
        bos_token=llama._model.token_get_text(llama.token_bos()),
    )
    rendered = formatter(messages=[dict(m) for m in messages])
    end = llama.tokenize(b"<|im_end|>", add_bos=False, special=True)
    end_token = end[0] if "<|im_end|>" in template and len(end) == 1 else eos
    return rendered.prompt, end_token


def _threads_of(llama: Any) -> int | None:
    """The threads llama.cpp evaluates prompts with, recorded per call: speed depends on it."""
    try:
        return int(llama.context_params.n_threads_batch)
    except AttributeError:
        return None


def perf_counters(llama: Any) -> dict[str, float] | None:
    """llama.cpp's cumulative counters: prompt tokens evaluated, tokens generated, their ms.

    `llama` is a `Llama` or a `TokenTreeScorer` (both hold their context as `_ctx`/`ctx`).
    """
    try:
        import llama_cpp

        ctx = llama.ctx if isinstance(llama, TokenTreeScorer) else llama._ctx
        data = llama_cpp.llama_perf_context(ctx.ctx)
    except (AttributeError, ImportError, TypeError):
        return None
    return {"prompt_tokens_evaluated": data.n_p_eval, "prompt_eval_ms": data.t_p_eval_ms,
            "generated_tokens": data.n_eval, "generation_ms": data.t_eval_ms}
