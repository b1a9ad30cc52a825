"""The synthetic market: determinism, validity, ground-truth consistency and recoverable structure."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from kgfin.data import load_market, validate_dir
from kgfin.data.synth import SynthConfig, synthesize
from kgfin.data.synth.characteristics import CHARACTERISTICS
from kgfin.data.tables import read_table

TINY = SynthConfig(companies=30, months=4, seed=3)


def _digest(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    a = synthesize(TINY, tmp_path / "a", progress=False).out_dir
    b = synthesize(TINY, tmp_path / "b", progress=False).out_dir
    c = synthesize(TINY.model_copy(update={"seed": 4}), tmp_path / "c", progress=False).out_dir
    da, db, dc = _digest(a), _digest(b), _digest(c)
    assert da == db
    assert len(da) > 20
    differing = {name for name in da if da[name] != dc.get(name)}
    assert {"returns.parquet", "news.parquet", "supply_links.parquet", "truth/impacts.parquet"} <= differing


def test_csv_output_validates(tmp_path: Path) -> None:
    out = synthesize(TINY.model_copy(update={"format": "csv"}), tmp_path / "csv", progress=False).out_dir
    assert (out / "returns.csv").exists() and not (out / "returns.parquet").exists()
    assert validate_dir(out) == []


def test_interrupted_run_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kgfin.data.synth.market as market

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("interrupted")

    monkeypatch.setattr(market.CharacteristicsModel, "month_end", boom)
    with pytest.raises(RuntimeError, match="interrupted"):
        synthesize(TINY, tmp_path / "out", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    synthesize(TINY, tmp_path / "out", progress=False)
    with pytest.raises(FileExistsError):
        synthesize(TINY, tmp_path / "out", progress=False)
    synthesize(TINY.model_copy(update={"seed": 5}), tmp_path / "out", progress=False, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_tables_and_sizes(synth_dir: Path) -> None:
    m = load_market(synth_dir)
    assert m.companies["ticker"].is_unique and m.companies["name"].is_unique
    assert m.companies["sector"].nunique() == 10
    assert m.supply_links["month"].nunique() == 8
    assert set(m.stock_factors.columns) == {"month", "ticker", *CHARACTERISTICS}
    assert len(CHARACTERISTICS) == 20
    # 60 months of patent history before the first month, for trailing-window similarity
    assert m.patents["grant_date"].min() < pd.Timestamp("2013-01-01")
    # directors with several seats create interlocks
    seats = m.board_seats.groupby("director_id")["ticker"].nunique()
    assert seats.max() >= 2
    # monthly factors are the compounded daily ones
    daily = m.factors_daily.assign(month=m.factors_daily["date"].dt.strftime("%Y-%m"))
    compounded = daily.groupby("month")["smb"].apply(lambda s: (1 + s).prod() - 1)
    np.testing.assert_allclose(compounded.to_numpy(), m.factors_monthly["smb"].to_numpy(), atol=1e-12)


def test_relations_evolve(synth_dir: Path) -> None:
    m = load_market(synth_dir)
    links = m.supply_links
    first = set(map(tuple, links[links["month"] == links["month"].min()][["supplier", "customer"]].to_numpy()))
    last = set(map(tuple, links[links["month"] == links["month"].max()][["supplier", "customer"]].to_numpy()))
    assert first != last and len(first & last) > 0.5 * len(first)
    h = m.fund_holdings
    w = h.groupby(["month", "fund_id"])["weight"].sum()
    np.testing.assert_allclose(w.to_numpy(), 1.0, atol=1e-6)
    assert h.groupby("fund_id")["ticker"].nunique().gt(h.groupby(["month", "fund_id"]).size().groupby("fund_id").max()).any()


def test_truth_is_consistent(default_synth_dir: Path) -> None:
    truth = default_synth_dir / "truth"
    events = read_table(truth / "events.parquet")
    effects = read_table(truth / "effects.parquet")
    impacts = read_table(truth / "impacts.parquet")
    shocks = read_table(truth / "daily_shocks.parquet")
    news = load_market(default_synth_dir, ["news"]).news
    companies = load_market(default_synth_dir, ["companies"]).companies
    names = dict(zip(companies["ticker"], companies["name"], strict=True))

    # impacts are the sum of the paths' effects
    summed = effects.groupby(["event_id", "ticker"])["shock"].sum()
    joined = impacts.set_index(["event_id", "ticker"])["shock"]
    np.testing.assert_allclose(summed.loc[joined.index].to_numpy(), joined.to_numpy())
    # the focal shock has the event's sign; one news item per event, naming the focal firm
    focal = effects[effects["hop"] == 0].merge(events, left_on=["event_id", "ticker"], right_on=["event_id", "focal"])
    assert (np.sign(focal["shock"]) == focal["sign"]).all()
    np.testing.assert_allclose(focal["shock"], focal["focal_shock"])
    assert set(news["id"]) == set(events["event_id"])
    merged = news.merge(events, left_on="id", right_on="event_id")
    assert merged.apply(lambda r: r["focal"] in r["tickers"] and names[r["focal"]] in r["body"], axis=1).all()
    # the text never names affected firms other than the focal firm and the counterpart
    ripple = impacts[impacts["min_hop"] >= 1].merge(events[["event_id", "focal", "counterpart"]], on="event_id")
    ripple = ripple[(ripple["ticker"] != ripple["counterpart"]) & (ripple["ticker"] != ripple["focal"])]
    text = (news["headline"] + " " + news["body"]).set_axis(news["id"])
    leaked = ripple.apply(lambda r: names[r["ticker"]] in text[r["event_id"]], axis=1)
    assert not leaked.any()
    # daily shocks = event-day shocks + the next-day carry
    carry = SynthConfig().events.next_day_carry
    days = np.sort(shocks["date"].unique())
    next_day = dict(zip(days[:-1], days[1:], strict=True))
    expected = pd.concat([
        impacts[["event_date", "ticker", "shock"]].rename(columns={"event_date": "date"}),
        impacts.assign(date=impacts["event_date"].map(next_day), shock=carry * impacts["shock"])
        .dropna(subset=["date"])[["date", "ticker", "shock"]],
    ]).groupby(["date", "ticker"])["shock"].sum()
    got = shocks.set_index(["date", "ticker"])["shock"]
    common = expected.index.intersection(got.index)
    assert len(common) >= 0.99 * len(expected)
    np.testing.assert_allclose(got.loc[common].to_numpy(), expected.loc[common].to_numpy(), atol=1e-12)


def test_ripple_signs_depend_on_the_event_not_only_the_relation(default_synth_dir: Path) -> None:
    truth = default_synth_dir / "truth"
    events = read_table(truth / "events.parquet")[["event_id", "event_type", "focal_shock"]]
    eff = read_table(truth / "effects.parquet").merge(events, on="event_id")
    eff = eff[eff["hop"] == 1]
    eff["relative_sign"] = np.sign(eff["shock"] / eff["focal_shock"])
    signs = eff.groupby(["relation", "event_type"])["relative_sign"].mean()
    # a supplier's outage hurts its customers, its price increase hurts them too but is good news for itself
    assert signs[("SUPPLIES", "plant_outage")] == 1.0
    assert signs[("SUPPLIES", "price_increase")] == -1.0
    # a contract win hurts technical competitors, a sector-wide regulation hits them in the same direction
    assert signs[("TECH_SIMILAR", "contract_win")] == -1.0
    assert signs[("TECH_SIMILAR", "regulation")] == 1.0
    # so no single sign per relation type reproduces the truth
    for relation in ("SUPPLIES", "TECH_SIMILAR"):
        assert set(np.sign(signs[relation]).unique()) == {-1.0, 1.0}
    # an executive moving between two named firms moves them in opposite directions
    cp = read_table(truth / "effects.parquet").merge(events, on="event_id")
    cp = cp[(cp["relation"] == "COUNTERPART") & (cp["event_type"] == "ceo_departure")]
    assert len(cp) > 0 and (np.sign(cp["shock"]) == -np.sign(cp["focal_shock"])).all()


def test_regression_recovers_generating_coefficients(default_synth_dir: Path) -> None:
    """Per stock, OLS of excess returns on factors, industry factor and planted shocks recovers the truth."""
    m = load_market(default_synth_dir, ["companies", "returns", "factors_daily"])
    truth = default_synth_dir / "truth"
    firms = read_table(truth / "firms.parquet").set_index("ticker")
    industry = read_table(truth / "industry_factors.parquet").set_index("date")
    shocks = read_table(truth / "daily_shocks.parquet").pivot(index="date", columns="ticker", values="shock")
    f = m.factors_daily.set_index("date")
    ret = m.returns.pivot(index="date", columns="ticker", values="ret")
    shocks = shocks.reindex(index=ret.index, columns=ret.columns).fillna(0.0)
    names = ["mkt_rf", "smb", "hml", "rmw", "cma", "industry", "shock"]
    z_scores, shock_rows = [], []
    for ticker in ret.columns:
        x = pd.concat([f[["mkt_rf", "smb", "hml", "rmw", "cma"]], industry[firms.at[ticker, "sector"]].rename("industry"),
                       shocks[ticker].rename("shock")], axis=1)
        fit = sm.OLS(ret[ticker] - f["rf"], sm.add_constant(x)).fit()
        true = np.array([firms.at[ticker, f"beta_{c}"] for c in names[:6]] + [1.0])
        z_scores.append((fit.params[names].to_numpy() - true) / fit.bse[names].to_numpy())
        shock_rows.append(pd.DataFrame({"y": ret[ticker] - f["rf"] - x.iloc[:, :6] @ true[:6], "shock": shocks[ticker]}))
    z = np.concatenate(z_scores)
    # estimates scatter around the truth as sampling error says they should
    assert 0.90 <= np.mean(np.abs(z) < 1.96) <= 0.99, np.mean(np.abs(z) < 1.96)
    assert abs(np.mean(z)) < 0.15
    pooled = pd.concat(shock_rows)
    fit = sm.OLS(pooled["y"], sm.add_constant(pooled["shock"])).fit()
    assert abs(fit.params["shock"] - 1.0) < 3 * fit.bse["shock"]
    assert fit.bse["shock"] < 0.05


def test_planted_alpha_predicts_next_month(default_synth_dir: Path) -> None:
    """The planted monthly alpha is in the returns, with coefficient one, and factors predict it."""
    m = load_market(default_synth_dir, ["companies", "returns", "factors_daily", "stock_factors"])
    alpha = read_table(default_synth_dir / "truth" / "monthly_alpha.parquet")
    rets = m.returns.assign(month=m.returns["date"].dt.strftime("%Y-%m"))
    monthly = rets.groupby(["month", "ticker"])["ret"].apply(lambda s: (1 + s).prod() - 1).rename("ret").reset_index()
    monthly["excess"] = monthly["ret"] - monthly.groupby("month")["ret"].transform("mean")
    df = monthly.merge(alpha, on=["month", "ticker"])
    df = df[df["month"] > df["month"].min()]
    df["alpha_dm"] = df["alpha"] - df.groupby("month")["alpha"].transform("mean")
    fit = sm.OLS(df["excess"], sm.add_constant(df["alpha_dm"])).fit()
    assert fit.pvalues["alpha_dm"] < 0.01
    assert abs(fit.params["alpha_dm"] - 1.0) < 3 * fit.bse["alpha_dm"]
    # regimes alternate, and the factor part follows the planted premia (value carries a positive premium)
    regimes = read_table(default_synth_dir / "truth" / "regimes.parquet")
    assert set(regimes["regime"]) == {0, 1}
    sf = m.stock_factors.copy()
    sf["next"] = sf["month"].map(lambda s: str(pd.Period(s, freq="M") + 1))
    joined = sf.merge(alpha, left_on=["next", "ticker"], right_on=["month", "ticker"])
    assert joined["book_to_market"].corr(joined["factor_alpha"], method="spearman") > 0.1
    assert joined["asset_growth"].corr(joined["factor_alpha"], method="spearman") < -0.1


def test_characteristics_are_point_in_time(default_synth_dir: Path) -> None:
    m = load_market(default_synth_dir, ["companies", "returns", "stock_factors"])
    sf = m.stock_factors.set_index(["month", "ticker"])
    months = sorted(sf.index.get_level_values(0).unique())
    assert sf.loc[months[5], "mom_12_1"].isna().all()  # needs 12 months of history
    assert sf.loc[months[12], "mom_12_1"].notna().all()
    # rev_1m of month m is exactly month m's compounded return
    r = m.returns[m.returns["date"].dt.strftime("%Y-%m") == months[3]]
    compounded = r.groupby("ticker")["ret"].apply(lambda s: (1 + s).prod() - 1)
    np.testing.assert_allclose(sf.loc[months[3], "rev_1m"].loc[compounded.index].to_numpy(), compounded.to_numpy())


def test_docs_list_every_setting() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "synthetic-market.md").read_text()

    def walk(model: type, prefix: str = "") -> list[tuple[str, object]]:
        rows = []
        for name, f in model.model_fields.items():
            sub = f.annotation
            if hasattr(sub, "model_fields"):
                rows += walk(sub, f"{prefix}{name}.")
            else:
                rows.append((f"{prefix}{name}", list(f.default) if isinstance(f.default, tuple) else f.default))
        return rows

    missing = [f"{k} = {d}" for k, d in walk(SynthConfig) if f"| `{k}` | `{d}` |" not in doc]
    assert not missing, f"docs/synthetic-market.md lacks or misstates settings {missing}"
