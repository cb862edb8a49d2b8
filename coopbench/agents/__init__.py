"""Per-agent actors for LLM planners: persona prompts, reply parsing, oracles for the sim model.

`replies` reads and writes the one plan grammar every env shares (`NAME <agent> ACTION <act>`
lines after `EXECUTE` or `PROCEED`); `prompts` assembles messages with the stable text first and
the changing state last (so llama.cpp and API prefix caches hit); `oracle` builds what the
simulated LLM answers from, out of the env's scripted expert.
"""

from coopbench.agents.oracle import joint_oracle, own_oracle
from coopbench.agents.replies import format_joint, format_own, parse_joint, parse_own

__all__ = ["format_joint", "format_own", "joint_oracle", "own_oracle", "parse_joint", "parse_own"]
