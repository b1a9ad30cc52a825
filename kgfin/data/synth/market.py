"""The synthetic market generator: month by month, written in chunks, with its ground truth.

:func:`synthesize` writes the input tables of ``docs/data-formats.md`` plus a ``truth/``
folder (see ``docs/synthetic-market.md``). Generation walks the months in order; each
month's relations, news, shocks, returns and characteristics are drawn from random
streams keyed by (seed, part, month), written, and dropped, so memory stays flat in the
number of months. Output goes to a temporary sibling directory that is renamed into
place only when complete: an interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from kgfin.data.calendar import add_months, month_range
from kgfin.data.synth.characteristics import CharacteristicsModel
from kgfin.data.synth.config import SynthConfig
from kgfin.data.synth.events import (
    EVENT_TYPES,
    EventType,
    MonthGraph,
    compose_news,
    event_table,
    path_text,
    propagate,
)
from kgfin.data.synth.factor_history import FactorHistory, build_factor_history
from kgfin.data.synth.relations import Boards, Funds, SupplyNetwork, draw_patents, true_tech_peers
from kgfin.data.synth.universe import CPC_GROUPS, SECTORS, Universe, make_universe
from kgfin.data.tables import TableWriter, write_table
from kgfin.runinfo import write_manifest

__all__ = ["SynthSummary", "synthesize"]

log = logging.getLogger(__name__)

_HARD = tuple(e for e in EVENT_TYPES if e.kind == "hard")
_SOFT = tuple(e for e in EVENT_TYPES if e.kind == "soft")
_FACTORS = ["mkt_rf", "smb", "hml", "rmw", "cma"]


@dataclass
class SynthSummary:
    """What a run wrote: rows per table, months, timing and the signal-to-noise table."""

    out_dir: Path
    months: list[str]
    rows: dict[str, int]
    seconds: float
    snr: pd.DataFrame
    factor_sources: pd.DataFrame = field(repr=False)


class _Streams:
    """Independent random streams keyed by (seed, part, index): order-independent and chunkable."""

    def __init__(self, seed: int):
        self.seed = seed

    def __call__(self, part: str, index: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(part.encode()), index])


@dataclass
class _SnrStats:
    """Running sums for the signal-to-noise table per event type."""

    sums: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, et: str, focal_abs: float, ripple_abs: np.ndarray, ripple_vol: np.ndarray, focal_vol: float) -> None:
        s = self.sums.setdefault(et, np.zeros(6))
        s += [1, focal_abs, focal_vol, ripple_abs.size, ripple_abs.sum(), ripple_vol.sum()]

    def table(self) -> pd.DataFrame:
        rows = []
        for et in (e.name for e in EVENT_TYPES):
            if et not in self.sums:
                continue
            n, focal, fvol, n_rip, rip, rvol = self.sums[et]
            rows.append({
                "event_type": et, "events": int(n), "mean_abs_focal_shock": focal / n,
                "focal_snr": focal / fvol if fvol else np.nan,
                "mean_affected": n_rip / n,
                "mean_abs_ripple_shock": rip / n_rip if n_rip else np.nan,
                "ripple_snr": rip / rvol if rvol else np.nan,
            })
        return pd.DataFrame(rows)


def _feasibility(types: tuple[EventType, ...], graph: MonthGraph, uni: Universe) -> np.ndarray:
    """(types, N) whether each event type can happen to each firm this month (its counterpart exists)."""
    sector_size = np.bincount(uni.sector_idx, minlength=len(SECTORS))
    has = {
        "supplier": np.diff(graph.suppliers.indptr) > 0,
        "customer": np.diff(graph.customers.indptr) > 0,
        "tech_peer": np.diff(graph.tech_peers.indptr) > 0,
        "target": np.diff(graph.tech_peers.indptr) > 0,
        "same_sector": sector_size[uni.sector_idx] > 1,
        None: np.ones(uni.n, dtype=bool),
    }
    return np.stack([has[et.counterpart] for et in types])


def _counterpart(et: EventType, focal: int, graph: MonthGraph, uni: Universe, log_cap: np.ndarray,
                 rng: np.random.Generator) -> int | None:
    need = et.counterpart
    if need is None:
        return None
    if need == "same_sector":
        pool = np.flatnonzero((uni.sector_idx == uni.sector_idx[focal]) & (np.arange(uni.n) != focal))
        return int(rng.choice(pool))
    relation = {"supplier": "suppliers", "customer": "customers", "tech_peer": "tech_peers", "target": "tech_peers"}[need]
    nbrs, strength = graph.neighbours(relation, focal)  # type: ignore[arg-type]
    weight = strength**2 if relation != "tech_peers" else np.maximum(strength, 1e-6)
    if need == "target":  # acquirers buy smaller firms
        weight = weight * np.exp(-np.maximum(0.0, log_cap[nbrs] - log_cap[focal]))
    return int(rng.choice(nbrs, p=weight / weight.sum()))


def _timestamp(days: pd.DatetimeIndex, d: int, prev_day: np.datetime64 | None, after_close: bool,
               rng: np.random.Generator) -> np.datetime64:
    """Publication time of news priced on trading day ``days[d]``."""
    if after_close:
        day = days.values[d - 1] if d > 0 else prev_day
        minute = int(rng.integers(16 * 60 + 5, 20 * 60))
    else:
        day = days.values[d]
        minute = int(rng.integers(7 * 60, 15 * 60 + 56))
    return (day + np.timedelta64(minute, "m")).astype("datetime64[s]")


@dataclass
class _MonthEvents:
    news: pd.DataFrame
    events: pd.DataFrame
    effects: pd.DataFrame
    impacts: pd.DataFrame
    shocks: np.ndarray  # (days, N) day-0 and next-day shocks within the month
    carry: np.ndarray  # (N,) next-day shocks that fall on the next month's first day
    sentiment: np.ndarray  # (N,) decayed signed news at the month end
    news_count: np.ndarray  # (N,) news items naming each firm


def _month_events(
    k: int, days: pd.DatetimeIndex, prev_day: np.datetime64 | None, graph: MonthGraph, uni: Universe,
    log_cap: np.ndarray, regime: int, cfg: SynthConfig, rng: np.random.Generator, first_id: int,
    snr: _SnrStats, idio: np.ndarray,
) -> _MonthEvents:
    ecfg = cfg.events
    n = uni.n
    names, tickers = uni.companies["name"].to_numpy(), uni.tickers
    focal_p = np.exp(0.5 * (log_cap - log_cap.max()))
    focal_p /= focal_p.sum()
    n_hard = rng.poisson(ecfg.rate * n)
    n_soft = rng.poisson(ecfg.soft_rate * n * (1.4 if regime else 0.6))
    hard_w = np.array([e.weight for e in _HARD])
    soft_w = np.array([e.weight for e in _SOFT])
    shocks = np.zeros((len(days), n))
    carry = np.zeros(n)
    sentiment = np.zeros(n)
    news_count = np.zeros(n, dtype=np.int64)
    month_last = days.values[-1]
    drafts = []
    for kind_types, kind_w, count in ((_HARD, hard_w, n_hard), (_SOFT, soft_w, n_soft)):
        feasible = _feasibility(kind_types, graph, uni)
        for focal in rng.choice(n, size=count, p=focal_p):
            focal = int(focal)
            w = kind_w * feasible[:, focal]
            et = kind_types[int(rng.choice(len(kind_types), p=w / w.sum()))]
            cp = _counterpart(et, focal, graph, uni, log_cap, rng)
            details, magnitude = et.detail(rng)
            focal_shock = et.sign * et.size * magnitude * ecfg.shock_scale * float(rng.lognormal(0, 0.25))
            d = int(rng.integers(len(days)))
            after_close = rng.random() < ecfg.after_close_share and (d > 0 or prev_day is not None)
            ts = _timestamp(days, d, prev_day, after_close, rng)
            slots = {"name": names[focal], "ticker": tickers[focal],
                     "sub": uni.sub_names[uni.sub_idx[focal]].lower(), **details}
            if cp is not None:
                slots |= {"cp": names[cp], "cp_ticker": tickers[cp]}
            headline, body = compose_news(et, slots, rng)
            drafts.append((ts, d, et, focal, cp, magnitude, focal_shock, details, headline, body))
    drafts.sort(key=lambda x: (x[0], x[3]))

    news_rows, event_rows, effect_rows, impact_rows = [], [], [], []
    for i, (ts, d, et, focal, cp, magnitude, focal_shock, details, headline, body) in enumerate(drafts):
        eid = f"N{first_id + i:07d}"
        day = days.values[d]
        effects = propagate(et, focal, cp, focal_shock, graph, ecfg.hop_damping, ecfg.min_effect)
        rule_rel = {r.name: r.relation for r in et.rules}
        total: dict[int, list[float]] = {}
        for e in effects:
            base_rule = e.rule.split("/")[0]
            effect_rows.append((eid, day, tickers[e.node], e.hop, e.relation, e.rule,
                                path_text(e.path, e.relation, rule_rel.get(base_rule), tickers),
                                e.shock, ecfg.next_day_carry * e.shock))
            agg = total.setdefault(e.node, [0.0, 0, e.hop])
            agg[0] += e.shock
            agg[1] += 1
            agg[2] = min(agg[2], e.hop)
        nodes = np.fromiter(total.keys(), dtype=np.int64)
        shock = np.array([v[0] for v in total.values()])
        shocks[d, nodes] += shock
        if d + 1 < len(days):
            shocks[d + 1, nodes] += ecfg.next_day_carry * shock
        else:
            carry[nodes] += ecfg.next_day_carry * shock
        for node, (s, n_paths, hop) in total.items():
            impact_rows.append((eid, day, tickers[node], s, n_paths, hop))
        named = [focal] if cp is None else [focal, cp]
        news_count[named] += 1
        age = (month_last - day) / np.timedelta64(1, "D")
        sentiment[focal] += et.sign * magnitude * 0.5 ** (age / cfg.alpha.news_halflife_days)
        rip_nodes = np.array([node for node in total if node not in named], dtype=np.int64)
        rip_abs = np.abs(np.array([total[node][0] for node in rip_nodes]))
        snr.add(et.name, abs(focal_shock), rip_abs, idio[rip_nodes], float(idio[focal]))
        news_rows.append((eid, ts, tuple(tickers[x] for x in named), headline, body))
        event_rows.append((eid, ts, day, et.name, et.kind, tickers[focal], tickers[cp] if cp is not None else "",
                           et.sign, magnitude, focal_shock, int(sum(1 for node in total if node != focal)),
                           json.dumps(details, sort_keys=True)))
    news = pd.DataFrame(news_rows, columns=["id", "timestamp", "tickers", "headline", "body"])
    events = pd.DataFrame(event_rows, columns=["event_id", "timestamp", "event_date", "event_type", "kind", "focal",
                                               "counterpart", "sign", "magnitude", "focal_shock", "n_affected",
                                               "details"])
    effects_df = pd.DataFrame(effect_rows, columns=["event_id", "event_date", "ticker", "hop", "relation", "rule",
                                                    "path", "shock", "shock_next_day"])
    impacts = pd.DataFrame(impact_rows, columns=["event_id", "event_date", "ticker", "shock", "n_paths", "min_hop"])
    return _MonthEvents(news, events, effects_df, impacts, shocks, carry, sentiment, news_count)


def _regimes(n_months: int, persistence: float, rng: np.random.Generator) -> np.ndarray:
    regime = np.empty(n_months, dtype=np.int64)
    regime[0] = rng.integers(2)
    for m in range(1, n_months):
        regime[m] = regime[m - 1] if rng.random() < persistence else 1 - regime[m - 1]
    return regime


def _prepare_out(out_dir: Path, overwrite: bool) -> Path:
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} exists and is not empty; choose another directory or overwrite")
    tmp = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "truth").mkdir(parents=True)
    return tmp


def _finish_out(tmp: Path, out_dir: Path) -> None:
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
        out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old)
    else:
        tmp.rename(out_dir)


def synthesize(cfg: SynthConfig, out_dir: str | Path, overwrite: bool = False, progress: bool = True) -> SynthSummary:
    """Generate the synthetic market described by ``cfg`` into ``out_dir``."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = _prepare_out(out_dir, overwrite)
    try:
        summary = _generate(cfg, tmp, progress)
        write_manifest(tmp, "kgfin data synth", cfg, extra={"rows": summary.rows})
        _finish_out(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    summary.out_dir = out_dir
    summary.seconds = time.perf_counter() - t0
    return summary


def _generate(cfg: SynthConfig, out: Path, progress: bool) -> SynthSummary:
    streams = _Streams(cfg.seed)
    rcfg, fmt = cfg.relations, cfg.format
    months = month_range(cfg.start, cfg.months)
    uni = make_universe(cfg.companies, streams("universe"))
    n = uni.n
    tickers = uni.tickers
    hist: FactorHistory = build_factor_history(cfg.start, cfg.months, streams)
    first_day = hist.days_by_month[months[0]][0]

    supply = SupplyNetwork(uni, rcfg, streams("supply"))
    boards = Boards(uni, rcfg, streams("boards"), first_day)
    funds = Funds(uni, rcfg, streams("funds"))
    tech = true_tech_peers(uni, rcfg.tech_peers, rcfg.tech_min_similarity)
    chars = CharacteristicsModel(n, uni.sector_idx, streams("characteristics"))
    regimes = _regimes(cfg.months, cfg.alpha.regime_persistence, streams("regimes"))
    idio = cfg.returns.idio_vol * uni.idio_vol_rel
    exposures = uni.exposures[_FACTORS].to_numpy()  # (N, 5)
    gamma = uni.exposures["industry"].to_numpy() * cfg.returns.sector_scale
    industry_cols = [s.ff_industry for s in SECTORS]
    df = cfg.returns.idio_df
    t_scale = np.sqrt((df - 2) / df)

    writers = {name: TableWriter(out, name, fmt) for name in
               ("supply_links", "fund_holdings", "patents", "returns", "news", "stock_factors")}
    truth = {name: TableWriter(out / "truth", name, fmt) for name in
             ("events", "effects", "impacts", "daily_shocks", "monthly_alpha")}
    snr = _SnrStats()
    try:
        patent_id = 0
        for h in range(rcfg.patent_history_months, 0, -1):
            p = pd.Period(add_months(cfg.start, -h), freq="M")
            batch = draw_patents(uni, rcfg.patents_per_month, pd.bdate_range(p.start_time, p.end_time),
                                 patent_id, streams("patents_history", h))
            patent_id += batch["patent_id"].nunique()
            writers["patents"].write(batch)

        log_cap = uni.log_cap0.copy()
        # Month 0 has no planted alpha: there is no earlier month to predict it from.
        zeros = np.zeros(n)
        alpha_parts = {"rho": zeros, "factor_alpha": zeros, "news_alpha": zeros, "ripple_alpha": zeros,
                       "sentiment": zeros}
        alpha = zeros
        carry = np.zeros(n)
        prev_monthly = np.zeros(n)
        news_id = 0
        prev_day: np.datetime64 | None = None
        bar = tqdm(months, desc="synthesising months", unit="month", disable=not progress)
        for k, month in enumerate(bar):
            days = hist.days_by_month[month]
            if k > 0:
                supply.step(streams("supply", k))
                boards.step(days, streams("boards", k))
                funds.step(prev_monthly, streams("funds", k))
            graph = MonthGraph.build(supply.matrix(), tech, boards.interlocks(days[0], days[-1]), funds.matrix(),
                                     rcfg.fund_partners)
            ev = _month_events(k, days, prev_day, graph, uni, log_cap, int(regimes[k]), cfg, streams("events", k),
                               news_id, snr, idio)
            news_id += len(ev.news)

            rng = streams("returns", k)
            f = hist.daily.loc[hist.daily["date"].isin(days)]
            x = f[_FACTORS].to_numpy()  # (D, 5)
            rf = f["rf"].to_numpy()  # (D,)
            ind = hist.industry.loc[days, industry_cols].to_numpy()[:, uni.sector_idx]  # (D, N)
            noise = idio * t_scale * rng.standard_t(df, size=(len(days), n))  # (D, N)
            shocks = ev.shocks.copy()
            shocks[0] += carry
            ret = rf[:, None] + x @ exposures.T + gamma * ind + alpha / len(days) + noise + shocks
            clipped = ret < -0.95
            if clipped.any():
                log.warning("%s: %d daily returns clipped at -95%%", month, int(clipped.sum()))
                ret = np.maximum(ret, -0.95)
            writers["returns"].write(pd.DataFrame({
                "date": np.repeat(days.values, n), "ticker": np.tile(tickers, len(days)), "ret": ret.ravel(),
            }))
            nz_d, nz_i = np.nonzero(shocks)
            truth["daily_shocks"].write(pd.DataFrame({
                "date": days.values[nz_d], "ticker": tickers[nz_i], "shock": shocks[nz_d, nz_i],
            }))
            carry = ev.carry

            writers["supply_links"].write(supply.frame(month))
            writers["fund_holdings"].write(funds.frame(month))
            batch = draw_patents(uni, rcfg.patents_per_month, days, patent_id, streams("patents", k))
            patent_id += batch["patent_id"].nunique()
            writers["patents"].write(batch)
            writers["news"].write(ev.news)
            for name in ("events", "effects", "impacts"):
                truth[name].write(getattr(ev, name))

            prev_monthly = np.prod(1 + ret, axis=0) - 1
            log_cap = log_cap + np.log1p(prev_monthly)
            stock_chars = chars.month_end(month, tickers, ret, x[:, 0] + rf, log_cap, ev.news_count,
                                          streams("characteristics", k + 1))
            writers["stock_factors"].write(stock_chars)

            truth["monthly_alpha"].write(pd.DataFrame({
                "month": month, "ticker": tickers, "regime": int(regimes[k]), "alpha": alpha, **alpha_parts,
            }))
            if k + 1 < cfg.months:
                size_z = (log_cap - log_cap.mean()) / log_cap.std()
                rho = 1 / (1 + np.exp(-(-1.5 + 3.0 * regimes[k + 1] - 0.8 * size_z)))
                ripple = ev.effects[ev.effects["hop"] >= 1].groupby("ticker")["shock"].sum()
                alpha_parts = {
                    "rho": rho,
                    "factor_alpha": cfg.alpha.factor_alpha * CharacteristicsModel.factor_score(stock_chars),
                    "news_alpha": cfg.alpha.news_alpha * np.tanh(ev.sentiment),
                    "ripple_alpha": cfg.alpha.ripple_drift * ripple.reindex(tickers, fill_value=0.0).to_numpy(),
                    "sentiment": ev.sentiment,
                }
                alpha = ((1 - rho) * alpha_parts["factor_alpha"] + rho * alpha_parts["news_alpha"]
                         + alpha_parts["ripple_alpha"])
            prev_day = days.values[-1]
    finally:
        for w in (*writers.values(), *truth.values()):
            w.close()

    rows = {name: w.rows for name, w in writers.items()}
    write_table(uni.companies, out, "companies", fmt)
    rows["companies"] = n
    board_frame = boards.frame()
    write_table(board_frame, out, "board_seats", fmt)
    rows["board_seats"] = len(board_frame)
    write_table(hist.daily, out, "factors_daily", fmt)
    write_table(hist.monthly, out, "factors_monthly", fmt)
    rows["factors_daily"], rows["factors_monthly"] = len(hist.daily), len(hist.monthly)

    tdir = out / "truth"
    firms = pd.concat([uni.companies[["ticker", "sector"]].assign(
        subindustry=[uni.sub_names[s] for s in uni.sub_idx], log_cap0=uni.log_cap0, idio_vol=idio,
        patent_rate=uni.patent_rate * rcfg.patents_per_month), uni.exposures.add_prefix("beta_")], axis=1)
    write_table(firms, tdir, "firms", fmt)
    coo = tech.tocoo()
    write_table(pd.DataFrame({"ticker": tickers[coo.row], "peer": tickers[coo.col], "similarity": coo.data})
                .sort_values(["ticker", "peer"], ignore_index=True), tdir, "tech_peers", fmt)
    ii, gg = np.nonzero(uni.cpc_profile > 1e-3)
    write_table(pd.DataFrame({"ticker": tickers[ii], "cpc_group": np.array(CPC_GROUPS)[gg],
                              "share": uni.cpc_profile[ii, gg]}), tdir, "cpc_profiles", fmt)
    write_table(pd.DataFrame({"month": months, "regime": regimes}), tdir, "regimes", fmt)
    ind = hist.industry[industry_cols].copy()
    ind.columns = [s.name for s in SECTORS]
    write_table(ind.rename_axis("date").reset_index(), tdir, "industry_factors", fmt)
    hist.sources.to_csv(tdir / "factor_sources.csv", index=False)
    snr_table = snr.table()
    snr_table.to_csv(tdir / "snr_by_event_type.csv", index=False, float_format="%.6g")
    event_table().to_csv(tdir / "event_types.csv", index=False)
    return SynthSummary(out, months, rows, 0.0, snr_table, hist.sources)
