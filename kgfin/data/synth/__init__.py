"""The synthetic market: kgfin's default data set and its benchmark with known truth.

>>> from kgfin.data.synth import SynthConfig, synthesize
>>> summary = synthesize(SynthConfig(companies=60, months=6, seed=1), "data/synth")  # doctest: +SKIP
"""

from kgfin.data.synth.config import SynthConfig
from kgfin.data.synth.market import SynthSummary, synthesize

__all__ = ["SynthConfig", "SynthSummary", "synthesize"]
