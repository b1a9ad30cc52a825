"""Language models: loading from a model spec (offline), prompts, constrained decoding and output parsing."""

from kgfin.llm.generate import chat_prompts, generate_replies
from kgfin.llm.grammar import AnswerGrammar, GrammarError
from kgfin.llm.models import (
    DEFAULT_ENCODER,
    DEFAULT_MODEL,
    TINY_MODEL,
    ModelNotFoundError,
    cache_dir,
    load_causal_lm,
    load_encoder,
    resolve_model_path,
)

__all__ = [
    "DEFAULT_ENCODER", "DEFAULT_MODEL", "TINY_MODEL", "AnswerGrammar", "GrammarError", "ModelNotFoundError",
    "cache_dir", "chat_prompts", "generate_replies", "load_causal_lm", "load_encoder", "resolve_model_path",
]
