"""A tiny causal LM over a 12-word vocabulary, for reinforcement-learning tests with known optima."""

from __future__ import annotations

from typing import Any

WORDS = ["<pad>", "<eos>", "<unk>", "a", "b", "c", "d", "e", "f", "g", "pick", "one"]


def _random_llama(vocab_size: int, seed: int, layers: int = 1, positions: int = 64) -> Any:
    """A random small Llama (pad 0, eos 1), in eval mode."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=positions,
                         pad_token_id=0, eos_token_id=1, bos_token_id=None, tie_word_embeddings=False)
    return LlamaForCausalLM(config).eval()


def _word_level(vocab: list[str], pre_tokenizer: Any, decoder: Any = None) -> Any:
    """A fast tokenizer over ``vocab`` (which starts <pad>, <eos>, <unk>)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizer
    if decoder is not None:
        core.decoder = decoder
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")


def toy_lm(seed: int = 0, layers: int = 1, words: list[str] = WORDS) -> tuple[Any, Any]:
    """A random 1-layer Llama and a word-level tokenizer (pad 0, eos 1) over ``words``."""
    from tokenizers.pre_tokenizers import WhitespaceSplit

    tok = _word_level(words, WhitespaceSplit())
    return _random_llama(len(words), seed, layers), tok


def char_lm(seed: int = 0) -> tuple[Any, Any]:
    """A random 1-layer Llama over single printable ASCII characters, for grammar tests: any such text
    tokenises, one character per token, and decodes back unchanged."""
    import string

    from tokenizers import Regex, decoders
    from tokenizers.pre_tokenizers import Split

    vocab = ["<pad>", "<eos>", "<unk>", *string.printable[:95]]
    tok = _word_level(vocab, Split(Regex("."), behavior="isolated"), decoders.Fuse())
    return _random_llama(len(vocab), seed, positions=256), tok
