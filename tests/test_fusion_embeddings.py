"""News embeddings: masked mean pooling over encoder or decoder token states, disk cache by text hash."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kgfin.llm.embeddings import NewsEmbedder, load_text_model, mean_pool  # noqa: E402

TEXTS = ["Acme beats estimates", "Bolt Corp cuts full-year outlook after a long plant outage in Ohio",
         "Acme beats estimates", "Cygnus upgraded"]


@pytest.mark.integration
@pytest.mark.parametrize("spec", ["tiny-random-llama", "all-minilm-l6-v2"])
def test_mean_pool_ignores_padding_and_matches_a_manual_masked_mean(spec: str) -> None:
    model, tok = load_text_model(spec)
    with torch.no_grad():
        batch = mean_pool(model, tok, TEXTS, max_length=32)
        alone = mean_pool(model, tok, TEXTS[:1], max_length=32)
        enc = tok(TEXTS[:1], return_tensors="pt")
        out = model(**enc, output_hidden_states=True)
        states = out.last_hidden_state if getattr(out, "last_hidden_state", None) is not None else out.hidden_states[-1]
    assert batch.shape == (4, model.config.hidden_size)
    torch.testing.assert_close(batch[0], alone[0], atol=1e-5, rtol=1e-4)  # padding in the batch changes nothing
    torch.testing.assert_close(alone[0], states[0].mean(0), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(batch[0], batch[2])


@pytest.mark.integration
def test_embedder_caches_by_model_and_text(tmp_path: Path) -> None:
    first = NewsEmbedder(model="tiny-random-llama", cache_root=tmp_path)
    vecs = first.embed(TEXTS, progress=False)
    assert vecs.shape == (4, 64) and vecs.dtype == np.float32
    assert first.computed == 3  # the repeated headline is embedded once
    assert len(list(first.cache_path.glob("shard-*.npz"))) == 1
    again = NewsEmbedder(model="tiny-random-llama", cache_root=tmp_path)
    np.testing.assert_array_equal(again.embed(TEXTS, progress=False), vecs)
    assert again.computed == 0
    more = again.embed(TEXTS + ["A new headline"], progress=False)
    assert again.computed == 1 and more.shape == (5, 64)
    other = NewsEmbedder(model="tiny-random-llama", max_length=8, cache_root=tmp_path)
    assert other.cache_path != first.cache_path and other.key(TEXTS[0]) == first.key(TEXTS[0])
    assert first.key("a") != first.key("b")
    normed = NewsEmbedder(model="tiny-random-llama", normalize=True, cache_root=tmp_path).embed(TEXTS, progress=False)
    np.testing.assert_allclose(np.linalg.norm(normed, axis=1), 1.0, rtol=1e-5)
    uncached = NewsEmbedder(model="tiny-random-llama", cache=False, cache_root=tmp_path / "none")
    uncached.embed(TEXTS, progress=False)
    assert not (tmp_path / "none").exists()


def test_unknown_model_spec_is_a_clear_error(tmp_path: Path) -> None:
    from kgfin.llm import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="unknown model"):
        NewsEmbedder(model="no-such-model", cache_root=tmp_path).embed(["x"], progress=False)
