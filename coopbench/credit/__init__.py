"""LLM-guided credit assignment (LCA, arXiv 2502.03723) and the MARL training that uses it.

    collect  (preferences.py)  consecutive state pairs -> per-agent LLM rankings, K times each
    fit      (potential.py)    confidence-weighted Bradley-Terry -> potentials Φ_i
    shape    (shaping.py)      r_i = r + λ(γΦ_i(s') − Φ_i(s)); `shaped_returns` for ReAd critics
    train    (ppo.py)          independent PPO over vectorised env copies; curves.py logs/plots

See docs/credit.md. Importing this package is light; torch loads with the modules that need it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Shaper", "shaped_returns", "shaping_term"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from coopbench.credit import shaping

        return getattr(shaping, name)
    raise AttributeError(name)
