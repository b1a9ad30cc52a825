"""Newsflow representations: token aggregations and layers, sentiment baselines, cache keys, learned pooling."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kgfin.llm.embeddings import (  # noqa: E402
    EmbedConfig,
    NewsEmbedder,
    embed_together,
    encode,
    is_decoder,
    layer_index,
    load_text_model,
    pool_states,
)
from kgfin.llm.sentiment import sentiment_features  # noqa: E402

# two texts of two real tokens each: the first padded on the right, the second on the left
STATES = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]],
                       [[100.0, 100.0], [5.0, 6.0], [7.0, 10.0]]])  # (B=2, T=3, d=2)
MASK = torch.tensor([[1, 1, 0], [0, 1, 1]])
TEXTS = ["Acme beats estimates", "Bolt Corp cuts full-year outlook after a long plant outage in Ohio",
         "Acme beats estimates", "Cygnus upgraded"]


@pytest.mark.parametrize(("pooling", "expected"), [
    ("mean", [[2.0, 3.0], [6.0, 8.0]]),  # (1+3)/2, (2+4)/2 | (5+7)/2, (6+10)/2
    ("last", [[3.0, 4.0], [7.0, 10.0]]),  # last real token, whatever the padding side
    ("cls", [[1.0, 2.0], [5.0, 6.0]]),  # first real token
])
def test_each_fixed_pooling_on_a_padded_batch(pooling: str, expected: list[list[float]]) -> None:
    torch.testing.assert_close(pool_states(STATES, MASK, pooling), torch.tensor(expected))


def test_unknown_pooling_and_layer_are_errors() -> None:
    with pytest.raises(ValueError, match="attention pooling is learned"):
        pool_states(STATES, MASK, "attention")
    with pytest.raises(ValueError, match="layer must be"):
        layer_index(6, "first")
    assert (layer_index(6, "last"), layer_index(6, "middle"), layer_index(30, "middle")) == (6, 3, 15)


def test_attention_pool_starts_as_the_mean_and_weights_tokens_by_hand() -> None:
    from kgfin.fusion.models import AttentionPool

    pool = AttentionPool(2, hidden=1)
    torch.testing.assert_close(pool(STATES, MASK), pool_states(STATES, MASK, "mean"))  # u = 0: uniform weights
    with torch.no_grad():
        pool.proj.weight.copy_(torch.tensor([[1.0, 0.0]]))
        pool.proj.bias.zero_()
        pool.u.weight.fill_(1.0)
    states = torch.tensor([[[0.0, 2.0], [1.0, 4.0], [9.0, 9.0]]])  # s_t = tanh(h_t[0]): tanh(0), tanh(1); pad
    mask = torch.tensor([[1, 1, 0]])
    e0, e1 = math.exp(math.tanh(0.0)), math.exp(math.tanh(1.0))
    a0, a1 = e0 / (e0 + e1), e1 / (e0 + e1)
    weights = pool.weights(states, mask)
    torch.testing.assert_close(weights, torch.tensor([[a0, a1, 0.0]]))
    torch.testing.assert_close(pool(states, mask), torch.tensor([[a1 * 1.0, a0 * 2.0 + a1 * 4.0]]))


def test_sentiment_features_of_fixed_headlines() -> None:
    heads = ["Acme quarterly earnings disappoint", "Acme downgraded at Ashby Brothers", "Acme wins a great contract",
             "Acme Corp"]
    vader = sentiment_features("vader", heads)  # compound, pos, neg, neu
    assert vader.shape == (4, 4) and vader.dtype == np.float32
    # VADER: compound = x / sqrt(x^2 + 15) with x the summed valences: disappoint -1.7; wins 2.7 + great 3.1
    assert vader[0, 0] == pytest.approx(-1.7 / math.sqrt(1.7 ** 2 + 15), abs=1e-4)
    assert vader[2, 0] == pytest.approx(5.8 / math.sqrt(5.8 ** 2 + 15), abs=1e-4)
    np.testing.assert_allclose(vader[3], [0.0, 0.0, 0.0, 1.0])  # no sentiment word: all neutral
    lm = sentiment_features("loughran-mcdonald", heads)  # polarity, subjectivity, positive / n, negative / n
    # "downgraded" is the one negative word of the two dictionary tokens ['acm', 'downgrad']
    np.testing.assert_allclose(lm[1], [-1.0, 0.5, 0.0, 0.5], atol=1e-5)
    # ['acm', 'earn', 'disappoint']: one negative of three tokens
    np.testing.assert_allclose(lm[0], [-1.0, 1 / 3, 0.0, 1 / 3], atol=1e-5)
    np.testing.assert_allclose(lm[3], [0.0, 0.0, 0.0, 0.0])
    assert lm[2, 0] > 0 and lm[2, 2] > lm[2, 3]  # "wins", "great": positive
    assert sentiment_features("vader", []).shape == (0, 4)
    with pytest.raises(ValueError, match="unknown sentiment"):
        sentiment_features("harvard", heads)


def test_cache_keys_and_folders_differ_per_aggregation_and_layer(tmp_path: Path) -> None:
    reps = [(p, layer) for p in ("mean", "last", "cls") for layer in ("last", "middle")]
    embedders = [NewsEmbedder(model="tiny-random-llama", pooling=p, layer=layer, cache_root=tmp_path)
                 for p, layer in reps]
    keys = {e.key("Acme beats estimates") for e in embedders}
    folders = {e.cache_path for e in embedders}
    assert len(keys) == len(reps) and len(folders) == len(reps)
    # the original representation (mean of the last layer) keeps its key, so existing caches stay valid
    default = NewsEmbedder(model="tiny-random-llama", cache_root=tmp_path)
    assert default.key("x") == hashlib.sha256(b"tiny-random-llama\0x").digest()
    vader = NewsEmbedder(model="vader", cache_root=tmp_path)
    assert vader.key("x") not in {e.key("x") for e in embedders}
    assert NewsEmbedder(model="vader", pooling="last", cache_root=tmp_path).key("x") == vader.key("x")  # n/a


def test_config_and_embedder_refuse_what_does_not_apply(tmp_path: Path) -> None:
    from kgfin.errors import KgfinError

    with pytest.raises(ValueError, match="sentiment scorer"):
        EmbedConfig(model="vader", pooling="attention")
    with pytest.raises(KgfinError, match="learned with the return head"):
        NewsEmbedder(model="tiny-random-llama", pooling="attention", cache_root=tmp_path).embed(["x"], progress=False)


def test_sentiment_embedder_caches_like_a_model(tmp_path: Path) -> None:
    first = NewsEmbedder(model="loughran-mcdonald", cache_root=tmp_path)
    vecs = first.embed(TEXTS, progress=False)
    assert vecs.shape == (4, 4) and first.computed == 3 and first.dim() == 4
    again = NewsEmbedder(model="loughran-mcdonald", cache_root=tmp_path)
    np.testing.assert_array_equal(again.embed(TEXTS, progress=False), vecs)
    assert again.computed == 0


@pytest.mark.integration
@pytest.mark.parametrize("spec", ["tiny-random-llama", "all-minilm-l6-v2"])
def test_cached_representations_match_the_model_states(spec: str, tmp_path: Path) -> None:
    model, tok = load_text_model(spec)
    assert is_decoder(model) == (spec == "tiny-random-llama")
    reps = [("mean", "last"), ("last", "middle"), ("cls", "middle"), ("cls", "last")]
    embedders = [NewsEmbedder(model=spec, pooling=p, layer=layer, max_length=32, cache_root=tmp_path)
                 for p, layer in reps]
    states_of = NewsEmbedder(model=spec, pooling="attention", layer="middle", max_length=32, cache_root=tmp_path)
    together, states = embed_together(embedders, TEXTS, progress=False, states_of=[states_of])
    with torch.no_grad():
        enc = tok(TEXTS[1:2], return_tensors="pt")  # one text, no padding
        hidden = model(**enc, output_hidden_states=True).hidden_states
        n = len(hidden) - 1
        for (pooling, layer), vecs, e in zip(reps, together, embedders, strict=True):
            h = hidden[layer_index(n, layer)][0]  # (T, d)
            want = {"mean": h.mean(0), "last": h[-1], "cls": h[0]}[pooling]
            np.testing.assert_allclose(vecs[1], want.numpy(), atol=1e-4, rtol=1e-3)
            alone = NewsEmbedder(model=spec, pooling=pooling, layer=layer, max_length=32, cache=False,
                                 cache_root=tmp_path / "x").embed(TEXTS, progress=False)
            np.testing.assert_allclose(alone, vecs, atol=1e-5, rtol=1e-4)  # one pass = separate passes
            assert e.computed == 3  # the repeated headline once
            direct = encode(model, tok, TEXTS, 32, pooling, layer)
            np.testing.assert_allclose(direct.numpy(), vecs, atol=1e-5, rtol=1e-4)
    st = states[0]
    assert st.states.shape[0] == 4 and st.mask.shape == st.states.shape[:2]
    k = int(st.mask[1].sum())
    np.testing.assert_allclose(st.states[1, :k], hidden[layer_index(n, "middle")][0].numpy(), atol=1e-4, rtol=1e-3)
    assert not st.states[1, k:].any()  # zeros at padding


@pytest.mark.integration
def test_attention_pooling_trains_with_the_head_and_sentiment_runs_through_fuse(synth_dir: Path) -> None:
    from kgfin.data import load_market
    from kgfin.fusion import FusionConfig, build_panel, fit_model, prepare_data, run_fusion
    from kgfin.fusion.pooling import AttentionPoolEncoder

    market = load_market(synth_dir)
    panel = build_panel(market)
    assert len(panel.texts) > 0
    states = NewsEmbedder(model="tiny-random-llama", pooling="attention", cache=False).token_states(
        panel.texts, progress=False)
    cfg = FusionConfig(models=["news_alone"], train={"epochs": 2, "select": "last"})
    enc = AttentionPoolEncoder(states, hidden=8, seed=0, lr=1e-2)
    before = {k: v.clone() for k, v in enc.pool.state_dict().items()}
    rows = np.flatnonzero(panel.has_news)[:5]
    with torch.no_grad():  # untrained: the stock-month mean of the headlines' mean-pooled states
        mean_items = torch.from_numpy(states.states).sum(1) / torch.from_numpy(states.mask).sum(1, keepdim=True)
        want = torch.stack([mean_items[torch.from_numpy(ids)].mean(0) for ids in panel.news_lists(rows)])
        torch.testing.assert_close(enc.rows(panel, rows, grad=False), want, atol=1e-5, rtol=1e-4)
    fit = fit_model("news_alone", prepare_data(panel, None, cfg, d_n=enc.dim), cfg, encoder=enc)
    assert fit.predictions["pred"].notna().all()
    assert any(not torch.equal(before[k], v) for k, v in enc.pool.state_dict().items())  # the pool learned
    for emb in ({"model": "vader"}, {"model": "tiny-random-llama", "pooling": "attention", "cache": False}):
        run = run_fusion(market, FusionConfig(models=["factors_alone", "news_alone"], embed=emb,
                                              train={"epochs": 1}), progress=False)
        assert list(run.table["model"]) == ["factors_alone", "news_alone"]
        assert run.table["ic_mean"].notna().all()
