"""Knowledge injection: LoRA adapters per month trained on instruction pairs, and memory accuracy."""

from kgfin.inject.adapters import adapters_disabled, attach_adapters
from kgfin.inject.config import InjectConfig, LoraSettings
from kgfin.inject.memory import accuracy_table, memory_accuracy, score_answer
from kgfin.inject.trainer import AdapterInfo, adapter_dir, read_pairs, sha256_file, train_adapter

__all__ = [
    "AdapterInfo", "InjectConfig", "LoraSettings", "accuracy_table", "adapter_dir", "adapters_disabled", "attach_adapters", "memory_accuracy",
    "read_pairs", "score_answer", "sha256_file", "train_adapter",
]
