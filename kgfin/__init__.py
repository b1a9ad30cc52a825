"""kgfin: graph-aware financial LLMs.

Monthly company knowledge graphs, knowledge injection into LoRA adapters, market
alignment, ripple-effect evaluation and factor/news/ripple return models.

Importing ``kgfin`` is cheap: heavy libraries (torch, transformers, ...) are imported
by the functions that need them.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kgfin")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
