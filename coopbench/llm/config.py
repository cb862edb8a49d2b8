"""The LLM config file (YAML; `COOPBENCH_LLM_CONFIG` or `<user config dir>/llm.yaml`).

```yaml
timeout_s: 60          # per-attempt timeout
total_timeout_s: 600   # give up on a call (all attempts and waits) after this long
backoff_s: 1           # first retry wait; doubles per retry, jittered, capped by backoff_max_s
backoff_max_s: 30
max_attempts: 6        # 1 + retries, transient failures only
concurrency: 8         # in-flight requests per endpoint, shared by all episodes in a process
endpoints:             # per base URL (OpenAI's is https://api.openai.com/v1)
  "http://127.0.0.1:8080/v1":
    api_key_env: MY_SERVER_KEY   # name of an env var holding the key
    api_key: "..."               # or the key itself (this file only; never the CLI)
    concurrency: 2
    constrain: grammar           # how `choices` reach the server: grammar (llama.cpp),
                                 # guided_choice (vLLM), json_schema or none; unset: probed
    scoring: batched             # how `score` asks: batched | per-prompt | sampled; unset:
                                 # probed (see coopbench.llm.probe)
    score_template: chatml       # how `score` renders messages for /completions: chatml | plain
    score_samples: 8             # replies sampled per `score` where the endpoint has no logprobs
prices:                # USD per 1M tokens, fnmatch patterns, override prices.json
  gpt-4o-mini*: {input: 0.15, output: 0.60}
```

API keys are never taken from the command line and never logged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coopbench.core import secrets
from coopbench.core.configfile import load_yaml
from coopbench.core.errors import ConfigError, CoopbenchError
from coopbench.llm import paths

_TOP = {"timeout_s", "total_timeout_s", "max_attempts", "concurrency", "endpoints", "prices",
        "backoff_s", "backoff_max_s"}
_ENDPOINT = {"api_key", "api_key_env", "concurrency", "timeout_s", "constrain", "scoring",
             "score_template", "score_samples"}


@dataclass
class LLMConfig:
    timeout_s: float = 60.0
    total_timeout_s: float = 600.0
    max_attempts: int = 6
    concurrency: int = 8
    backoff_s: float = 1.0  # first backoff; doubles per retry, jittered
    backoff_max_s: float = 30.0
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    prices: dict[str, Any] = field(default_factory=dict)
    source: str = "defaults"

    def endpoint(self, base_url: str) -> dict[str, Any]:
        return self.endpoints.get(base_url.rstrip("/"), {})

    def api_key(self, base_url: str, default_env: str) -> str | None:
        """The key for an endpoint: config `api_key_env`, config `api_key`, then `default_env`."""
        ep = self.endpoint(base_url)
        if ep.get("api_key_env"):
            return os.environ.get(str(ep["api_key_env"])) or None
        if ep.get("api_key"):
            return str(ep["api_key"])
        return os.environ.get(default_env) or None


def load(path: Path | None = None) -> LLMConfig:
    """Read the config file if it exists; raise `ConfigError` (one line) if it is malformed."""
    path = path or paths.config_file()
    if not path.exists():
        return LLMConfig()
    data = load_yaml(path, "LLM config") or {}  # not UTF-8, too deep, too large: one line
    if not isinstance(data, dict):
        raise ConfigError(f"LLM config {path} must be a mapping")
    unknown = set(data) - _TOP
    if unknown:
        raise ConfigError(f"LLM config {path}: unknown key(s) {sorted(unknown)}")
    endpoints = data.get("endpoints") or {}
    if not isinstance(endpoints, dict):
        raise ConfigError(f"LLM config {path}: `endpoints` must map base URLs to settings")
    for url, settings in endpoints.items():
        if not isinstance(settings, dict) or set(settings) - _ENDPOINT:
            raise ConfigError(
                f"LLM config {path}: endpoint {url!r} may set only {sorted(_ENDPOINT)}"
            )
    try:
        return LLMConfig(
            timeout_s=float(data.get("timeout_s", 60.0)),
            total_timeout_s=float(data.get("total_timeout_s", 600.0)),
            max_attempts=int(data.get("max_attempts", 6)),
            concurrency=int(data.get("concurrency", 8)),
            backoff_s=float(data.get("backoff_s", 1.0)),
            backoff_max_s=float(data.get("backoff_max_s", 30.0)),
            endpoints={str(k).rstrip("/"): v for k, v in endpoints.items()},
            prices=dict(data.get("prices") or {}),
            source=str(path),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"LLM config {path}: {exc}") from None


KEY_ENV_VARS = ("OPENAI_API_KEY", "OPENAI_COMPAT_API_KEY")


def register_keys() -> None:
    """Register the keys in the environment and the LLM config file (best effort: a
    malformed config file is reported where it is used, not here)."""
    for name in KEY_ENV_VARS:
        secrets.register_secret(os.environ.get(name))
    try:
        config = load()
    except CoopbenchError:
        return
    for settings in config.endpoints.values():
        if isinstance(settings, dict):
            secrets.register_secret(str(settings.get("api_key") or ""))
            secrets.register_secret(os.environ.get(str(settings.get("api_key_env") or "")))
