"""Instruction pairs from monthly company graphs, for knowledge injection."""

from kgfin.instruct.buffer import RotatingBuffer
from kgfin.instruct.config import FAMILIES, InstructConfig
from kgfin.instruct.generate import InstructionPair, generate_pairs, read_pair_file, write_pairs
from kgfin.instruct.training_set import training_pairs

__all__ = [
    "FAMILIES", "InstructConfig", "InstructionPair", "RotatingBuffer", "generate_pairs", "read_pair_file",
    "training_pairs", "write_pairs",
]
