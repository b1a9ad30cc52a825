"""Training protocol: time-ordered split, determinism, no use of test targets, mixture diagnostics, LoRA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kgfin.config import ConfigError, load_config  # noqa: E402
from kgfin.data import load_market  # noqa: E402
from kgfin.errors import KgfinError  # noqa: E402
from kgfin.fusion.config import FusionConfig, SplitConfig  # noqa: E402
from kgfin.fusion.features import build_panel  # noqa: E402
from kgfin.fusion.train import fit_model, prepare_data, split_months  # noqa: E402

MONTHS = [f"2020-{m:02d}" for m in range(1, 13)] + ["2021-01", "2021-02", "2021-03"]
FAST = ["train.epochs=2", "model.hidden=8", "model.proj_dim=8", "train.grad_var_batches=4", "train.batch_size=64"]


def test_split_is_time_ordered_and_follows_fractions_or_explicit_starts() -> None:
    out = split_months(MONTHS, SplitConfig(valid_fraction=0.2, test_fraction=0.2))
    assert [out[m] for m in MONTHS] == ["train"] * 9 + ["valid"] * 3 + ["test"] * 3
    out = split_months(MONTHS, SplitConfig(valid_start="2020-10", test_start="2021-01"))
    assert [out[m] for m in MONTHS] == ["train"] * 9 + ["valid"] * 3 + ["test"] * 3
    with pytest.raises(KgfinError, match="empty"):
        split_months(MONTHS[:2], SplitConfig())
    with pytest.raises(ConfigError, match="valid_start"):
        load_config(FusionConfig, overrides=["split.valid_start=2021-01", "split.test_start=2020-06"])
    with pytest.raises(ConfigError, match="unknown model"):
        load_config(FusionConfig, overrides=["models=[factors_alone,bogus]"])


def test_the_recipe_holds_the_paper_defaults() -> None:
    recipe = Path(__file__).resolve().parents[1] / "kgfin" / "recipes" / "fusion.yaml"
    cfg = load_config(FusionConfig, recipe, section="fusion")
    assert (cfg.train.batch_size, cfg.train.lr, cfg.train.lr_schedule, cfg.train.epochs) == (32, 1e-4, "linear", 10)
    assert (cfg.train.dropout, cfg.train.weight_decay, cfg.lora.r) == (0.3, 1e-4, 4)
    assert cfg == FusionConfig()  # the recipe spells out the defaults


@pytest.fixture(scope="module")
def small_data(synth_dir: Path):
    market = load_market(synth_dir)
    table = market.stock_factors[["month", "ticker"]].iloc[::2].assign(
        ripple=np.random.default_rng(1).normal(size=len(market.stock_factors[::2])))
    table["month"] = table["month"].astype(str)
    panel = build_panel(market, ripple=table)
    vectors = np.random.default_rng(0).normal(size=(len(panel.texts), 16)).astype(np.float32)
    cfg = load_config(FusionConfig, overrides=FAST)
    return panel, vectors, cfg


@pytest.mark.parametrize(("name", "ripple"), [("fusion_attention", True), ("mixture_decoupled", True),
                                              ("mixture_conventional", False)])
def test_fit_is_deterministic_and_predicts_every_row(small_data, name: str, ripple: bool) -> None:
    panel, vectors, cfg = small_data
    data = prepare_data(panel, vectors, cfg)
    a = fit_model(name, data, cfg, use_ripple=ripple)
    b = fit_model(name, data, cfg, use_ripple=ripple)
    assert len(a.predictions) == len(panel) and set(a.predictions["split"]) == {"train", "valid", "test"}
    np.testing.assert_array_equal(a.predictions["pred"], b.predictions["pred"])
    assert sorted(a.history["epoch"].unique()) == [0, 1, 2] and set(a.history["split"]) == {"train", "valid"}
    if name.startswith("mixture"):
        assert {"comp_factors", "comp_news", "comp_fusion", "weight_factors"} <= set(a.predictions.columns)
        assert set(a.history["series"]) == {"output", "factors", "news", "fusion"}
        gv = a.grad_var
        assert set(gv["loss"]) == {"conventional", "decoupled", "trajectory"}
        assert set(gv["component"]) == {"factors", "news", "fusion", "gate"}
        assert (gv["raw"] >= 0).all() and np.isfinite(gv["relative"]).all()
        pd_w = a.predictions[[c for c in a.predictions if c.startswith("weight_")]].sum(axis=1)
        np.testing.assert_allclose(pd_w, 1.0, rtol=1e-5)
    else:
        assert a.grad_var.empty


def test_test_targets_never_influence_training_or_selection(small_data) -> None:
    panel, vectors, cfg = small_data
    data = prepare_data(panel, vectors, cfg)
    base = fit_model("mixture_decoupled", data, cfg, use_ripple=True)
    test = data.split == "test"
    data.y = data.y.copy()
    data.y[test] = -data.y[test] * 5  # scramble the test months' targets
    again = fit_model("mixture_decoupled", data, cfg, use_ripple=True)
    np.testing.assert_array_equal(base.predictions["pred"], again.predictions["pred"])
    assert base.best_epoch == again.best_epoch


def test_validation_selection_and_ripple_checks(small_data) -> None:
    panel, vectors, cfg = small_data
    data = prepare_data(panel, vectors, cfg)
    res = fit_model("news_alone", data, cfg, use_ripple=True)
    h = res.history
    valid = h[(h["split"] == "valid") & (h["series"] == "output") & (h["epoch"] > 0)]  # trained epochs only
    assert res.best_epoch == int(valid.loc[valid["ic"].idxmax(), "epoch"])
    with pytest.raises(KgfinError, match="no ripple"):
        fit_model("factors_alone", data, cfg, use_ripple=True)
    assert data.x_r[panel.has_ripple, 1].all() and not data.x_r[~panel.has_ripple].any()


def test_a_factors_only_run_needs_no_news_vectors(small_data) -> None:
    panel, _, cfg = small_data
    data = prepare_data(panel, None, cfg, d_n=4)
    res = fit_model("factors_alone", data, cfg)
    assert np.isfinite(res.predictions["pred"]).all()
    with pytest.raises(KgfinError, match="needs news vectors"):
        fit_model("news_alone", data, cfg)


@pytest.mark.integration
def test_lora_fine_tuning_trains_only_the_adapters(small_data) -> None:
    from kgfin.fusion.lora import LoraNewsEncoder

    panel, _, cfg = small_data
    cfg = load_config(FusionConfig, overrides=[*FAST, "train.epochs=1", "embed.model=tiny-random-llama",
                                               "lora.enabled=true", "lora.lr=0.01", "train.select=last"])
    enc = LoraNewsEncoder(cfg.embed, cfg.lora, seed=0)
    named = {n: p for n, p in enc.model.named_parameters() if p.requires_grad}
    assert named and all("lora_" in n for n in named)
    assert enc.n_trainable == sum(p.numel() for p in named.values()) < 0.05 * sum(
        p.numel() for p in enc.model.parameters())
    before = {n: p.detach().clone() for n, p in named.items()}
    frozen = {n: p.detach().clone() for n, p in enc.model.named_parameters() if not p.requires_grad}
    data = prepare_data(panel, None, cfg, d_n=enc.dim)
    res = fit_model("news_alone", data, cfg, encoder=enc)
    assert res.lora and np.isfinite(res.predictions["pred"]).all()
    after = dict(enc.model.named_parameters())
    assert any(not torch.equal(before[n], after[n]) for n in before if "lora_B" in n)
    assert all(torch.equal(frozen[n], after[n]) for n in frozen)
