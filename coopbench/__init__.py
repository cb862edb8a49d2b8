"""coopbench: ground LLM planners in embodied multi-agent collaboration, and benchmark them."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("coopbench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
