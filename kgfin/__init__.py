"""kgfin: graph-aware financial LLMs.

Monthly company knowledge graphs, knowledge injection into LoRA adapters, market
alignment, ripple-effect evaluation and factor/news/ripple return models.

Importing ``kgfin`` is cheap: heavy libraries (torch, transformers, ...) are imported
by the functions that need them, and the pipeline's steps below are loaded from their
subpackages on first use (``kgfin.align_market`` is ``kgfin.align.align``: the subpackage
keeps the short name)::

    import kgfin
    kgfin.synthesize(kgfin.SynthConfig(companies=40, months=12), "data/small")
    market = kgfin.load_market("data/small")
    with kgfin.open_store(".kgfin/graph") as store:
        kgfin.build_into_store("data/small", store)

See ``docs/api.md`` and ``examples/quickstart.py``.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("kgfin")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

# The pipeline's steps, in order: name -> the module that defines it ("module:attribute" where the names differ).
_API = {
    "load_config": "kgfin.config",
    "SynthConfig": "kgfin.data.synth", "synthesize": "kgfin.data.synth",
    "MarketData": "kgfin.data", "load_market": "kgfin.data", "validate_dir": "kgfin.data",
    "ImportReport": "kgfin.data.importers", "import_13f": "kgfin.data.importers",
    "import_insiders": "kgfin.data.importers", "import_patentsview": "kgfin.data.importers",
    "import_french_factors": "kgfin.data.importers", "import_news": "kgfin.data.importers",
    "import_prices": "kgfin.data.importers", "import_supply_links": "kgfin.data.importers",
    "GraphConfig": "kgfin.graph", "GraphSnapshot": "kgfin.graph", "build_snapshot": "kgfin.graph",
    "build_snapshots": "kgfin.graph",
    "GraphStore": "kgfin.store", "open_store": "kgfin.store", "build_into_store": "kgfin.store",
    "InstructConfig": "kgfin.instruct", "generate_pairs": "kgfin.instruct", "training_pairs": "kgfin.instruct",
    "write_pairs": "kgfin.instruct",
    "InjectConfig": "kgfin.inject", "train_adapter": "kgfin.inject", "adapter_dir": "kgfin.inject",
    "attach_adapters": "kgfin.inject", "memory_accuracy": "kgfin.inject",
    "load_causal_lm": "kgfin.llm",
    "ResidualConfig": "kgfin.market", "residuals": "kgfin.market",
    "AlignConfig": "kgfin.align", "align_market": "kgfin.align:align", "news_events": "kgfin.align",
    "build_impact_reward": "kgfin.align", "ModelVariant": "kgfin.align", "predict_events": "kgfin.align",
    "RippleEvalConfig": "kgfin.evaluate", "run_ripple_eval": "kgfin.evaluate", "impact_stats": "kgfin.evaluate",
    "FusionConfig": "kgfin.fusion", "run_fusion": "kgfin.fusion",
    "LongShortConfig": "kgfin.portfolio", "long_short_backtest": "kgfin.portfolio",
    "decile_portfolios": "kgfin.portfolio", "performance": "kgfin.portfolio",
    "build_report": "kgfin.report",
    "PipelineConfig": "kgfin.pipeline", "load_profile": "kgfin.pipeline", "run_pipeline": "kgfin.pipeline",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        module, _, attribute = _API[name].partition(":")
        value = getattr(import_module(module), attribute or name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kgfin' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
