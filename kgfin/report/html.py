"""The ripple-analysis report: one self-contained HTML file for a run folder.

A run folder holds any of ``data/`` (a market), ``graph/`` (the embedded store),
``align/`` (``kgfin align``), ``ripple_eval/`` (``kgfin evaluate ripple``) and ``fusion/``
(``kgfin fuse``); the report shows what is there and says what is not. Everything is
inline (CSS and SVG charts, no scripts), so the file opens anywhere without a network.

Sections: run summary (data, graph statistics), alignment curves, the ripple evaluation
(the v2 table first: mean rank IC with CIs and paired p-values, a forest plot, power, coverage,
counts, the long-short on each row's scores, and per event the candidate ranking of each method
next to the realised and planted moves; then the paper-analogue tables under their own heading),
the fusion table with decile and cumulative-return charts and the factor-research conventions of the best
model's out-of-sample signal (IC decay, turnover, quantile returns with error bars, drawdown), and one section per event:
the news, the companies the model named, the propagated Z beside the realised residual
(and the planted shock on synthetic data), and a picture of the graph paths.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kgfin.errors import KgfinError
from kgfin.evaluate.v2 import CONTROLS, ORACLES
from kgfin.report import charts

__all__ = ["EVENT_METHOD_ORDER", "build_report"]

EVENT_METHOD_ORDER = ("aligned", "knowledge", "rag", "icl", "zero_shot", "propagation_only", "oracle")

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.6rem} h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2.2rem} h3{margin-top:1.4rem}
table.data{border-collapse:collapse;font-size:.82rem;margin:.6rem 0}
table.data td,table.data th{border:1px solid #ddd;padding:.2rem .45rem;text-align:right}
table.data th{background:#f3f3f3} table.data td:first-child{text-align:left}
.missing{color:#888;font-style:italic} .news{background:#f8f8f8;padding:.6rem 1rem;border-left:3px solid #1f77b4}
nav a{margin-right:.8rem} .event{border-top:1px dashed #bbb;margin-top:1.5rem} svg{max-width:100%;height:auto}
"""


@dataclass
class _Section:
    id: str
    title: str
    html: str


def _table(frame: pd.DataFrame, floatfmt: str = "{:.4g}") -> str:
    return frame.to_html(index=False, classes="data", border=0, na_rep="-",
                         float_format=lambda v: floatfmt.format(v))


def _read(path: Path) -> pd.DataFrame | None:
    """A CSV of the run, or None when it is absent or empty (a table without rows)."""
    if not path.exists():
        return None
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return None


def _esc(text: str) -> str:
    import html

    return html.escape(str(text))


def _missing(what: str, how: str) -> str:
    return f'<p class="missing">No {_esc(what)} in this run ({_esc(how)}).</p>'


def _stages(run: Path) -> str:
    """The pipeline's stage table (kgfin demo runs): status, wall time and peak memory."""
    path = run / "pipeline.json"
    if not path.exists():
        return ""
    manifest = json.loads(path.read_text())
    rows = [{"stage": rec.get("name"), "status": rec.get("status"),
             "wall s": None if rec.get("seconds") is None else round(rec["seconds"]),
             "peak MB": None if rec.get("peak_rss_mb") is None else round(rec["peak_rss_mb"])}
            for rec in manifest.get("stages", [])]
    return (f"<h3>Pipeline ({_esc(str(manifest.get('profile')))} profile, config {_esc(str(manifest.get('config_hash')))})"
            f"</h3>" + _table(pd.DataFrame(rows), "{:,.0f}"))


def _summary(run: Path) -> tuple[str, Any]:
    parts = [_stages(run)]
    market = None
    data = run / "data"
    if (data / "kgfin-run.json").exists() or (data / "companies.parquet").exists() or (data / "companies.csv").exists():
        from kgfin.data import load_market

        market = load_market(data)
        days = pd.DatetimeIndex(market.returns["date"]) if market.returns is not None else None
        rows = [("companies", f"{len(market.companies):,}")]
        if days is not None:
            rows.append(("trading days", f"{days.nunique():,} ({days.min().date()} .. {days.max().date()})"))
        if market.news is not None:
            rows.append(("news items", f"{len(market.news):,}"))
        manifest = data / "kgfin-run.json"
        if manifest.exists():
            cfg = json.loads(manifest.read_text()).get("config", {})
            rows.append(("generator", f"synthetic market, seed {cfg.get('seed')}" if "seed" in cfg else "user data"))
        parts.append(_table(pd.DataFrame(rows, columns=["data", "value"])))
    else:
        parts.append(_missing("data folder", "kgfin data synth --out RUN/data"))
    graph = run / "graph"
    if graph.exists():
        from kgfin.store import open_store

        with open_store(graph) as store:
            stats = store.stats()
        if len(stats):
            parts.append("<h3>Monthly graphs</h3>" + _table(stats.tail(12)))
    else:
        parts.append(_missing("graph store", "kgfin graph build RUN/data --store RUN/graph"))
    return "".join(parts), market


def _alignment(run: Path) -> str:
    log = _read(run / "align" / "align_log.csv")
    if log is None or log.empty:
        return _missing("alignment run", "kgfin align ... --out RUN/align")
    from kgfin.align.trainer import reward_trend

    w = max(1, len(log) // 4)
    first, last = reward_trend(log, w)
    facts = pd.DataFrame([
        ("steps", len(log)), ("months", f"{log['month'].iloc[0]} .. {log['month'].iloc[-1]}"),
        ("mean reward, first / last quarter", f"{first:.4f} / {last:.4f}"),
        ("refusal rate, first / last quarter",
         f"{log['refusal_rate'].head(w).mean():.1%} / {log['refusal_rate'].tail(w).mean():.1%}"),
        *([("share of +-10 scores, first / last quarter",
            f"{log['saturated'].head(w).mean():.1%} / {log['saturated'].tail(w).mean():.1%}")]
          if "saturated" in log and log["saturated"].notna().any() else []),
        ("seconds per step", f"{log['seconds'].mean():.1f}"),
    ], columns=["alignment", "value"])
    return _table(facts) + charts.training_curves(log)


_TABLE_TITLES = {
    "regression_capm": "Table 1 analogue: CAPM residuals on predicted ripple Z",
    "anova": "Table 2 analogue: ANOVA over the sign of Z",
    "long_short": "Table 3 analogue: daily long-short on Z vs benchmark allocators (no Sharpe under 60 periods)",
    "refusals": "Table 4 analogue: refusal rate by temperature",
    "regression_ff3": "Table 9 analogue: FF3 residuals", "regression_ff5": "Table 10 analogue: FF5 residuals",
    "drop_relation": "Table 11 analogue: one relation type removed from mu",
    "truth": "Against the planted truth",
}

_V2_TABLES = {
    "paired": "Paired differences (row minus baseline, same events): bootstrap CI and p, Wilcoxon p",
    "power": "Power: events a difference in mean rank IC needs (80 %, paired, two-sided 5 %)",
    "coverage_summary": "Candidate sets: coverage of the planted ripple",
    "counts": "Counts: events, drops, refusals, firms named outside the candidates",
    "long_short": "Daily long-short on each row's scores over the evaluation window (no Sharpe under 60 periods)",
}


def _v2_confidence(folder: Path) -> float:
    """The v2 intervals' level, from the evaluation's manifest (0.95 when it is not recorded)."""
    path = folder / "kgfin-run.json"
    if path.exists():
        cfg = json.loads(path.read_text()).get("config", {})
        return float(cfg.get("v2", {}).get("confidence", 0.95))
    return 0.95


def _event_rankings(folder: Path, summary: pd.DataFrame, news: pd.DataFrame | None, max_events: int,
                    top: int = 10) -> str:
    """Per event: each method's top candidates by |score| beside the candidates ranked by |realised move| and by
    |planted shock|; planted ripple firms in bold, a method's candidates without a view left out."""
    scores, per_event = _read(folder / "v2_scores.csv"), _read(folder / "v2_per_event.csv")
    if scores is None or per_event is None or max_events <= 0:
        return ""
    scores["event_id"] = scores["event_id"].astype(str)
    methods = [m for m in summary["method"] if m not in CONTROLS and m != "oracle" and m in set(scores["method"])]
    truth = scores[scores["method"] == scores["method"].iloc[0]].drop_duplicates(["event_id", "ticker"])
    planted = truth["planted"].notna().any()
    weight = truth.assign(w=(truth["planted"] if planted else truth["move"]).abs()).groupby("event_id")["w"].sum()
    chosen = list(weight.sort_values(ascending=False, kind="stable").index[:max_events])
    ic_col = next((c for c in per_event.columns if c.startswith("ic_h")), None)
    parts = [f"<h4>Per event: each method's candidate ranking next to the truth ({len(chosen)} events with the "
             f"largest {'planted ripple' if planted else 'realised moves'})</h4>"
             "<p>Top candidates by |score| (a method's unscored candidates are left out), by |realised residual| "
             "over the headline window and by |planted shock|; <b>bold</b>: a firm the event truly moves.</p>"]
    for eid in chosen:
        part = scores[scores["event_id"] == eid]
        t = truth[truth["event_id"] == eid]
        hit = set(t.loc[t["planted"].fillna(0) != 0, "ticker"])

        def column(frame: pd.DataFrame, value: str, hit: set[str] = hit) -> list[str]:
            f = frame[frame[value].fillna(0) != 0]
            f = f.reindex(f[value].abs().sort_values(ascending=False, kind="stable").index).head(top)
            cells = [(f"<b>{_esc(k)}</b>" if k in hit else _esc(k)) + f" {v:+.3g}"
                     for k, v in zip(f["ticker"], f[value], strict=True)]
            return cells + [""] * (top - len(cells))

        cols = {m: column(part[part["method"] == m], "score") for m in methods}
        cols["realised move"] = column(t, "move")
        if planted:
            cols["planted shock"] = column(t, "planted")
        table = pd.DataFrame({"rank": range(1, top + 1), **cols})
        ics = per_event[(per_event["event_id"].astype(str) == eid) & (per_event["variant"] == "focal")]
        ic = ", ".join(f"{_esc(m)} {v:+.3f}" for m, v in zip(ics["method"], ics[ic_col], strict=True)
                       if m in methods and pd.notna(v)) if ic_col else ""
        headline = _esc(news.loc[eid, "headline"]) if news is not None and eid in news.index else ""
        parts.append(f'<div class="event"><p><b>{_esc(eid)}</b> {headline}<br>rank IC: {ic}</p>'
                     + table.to_html(index=False, classes="data", border=0, escape=False) + "</div>")
    return "".join(parts)


def _ripple_v2(run: Path, market: Any, max_events: int) -> str:
    """The v2 part of the ripple section: the headline table, the forest plot, the supporting tables, the
    per-event rankings."""
    folder = run / "ripple_eval"
    summary = _read(folder / "v2_summary.csv")
    if summary is None:
        return _missing("ripple evaluation v2", "kgfin evaluate ripple ... --out RUN/ripple_eval")
    head = [c for c in summary.columns if c in ("method", "events", "mean rank IC", "CI low", "CI high")
            or c.startswith("p vs ") or c.startswith("recall@") or c.startswith("NDCG@")
            or c in ("corr planted", "refused", "no ranking", "named outside")]
    parts = ["<p>Every method scored on the same candidates of each event (the focal firm's graph neighbours plus "
             "random others), on the realised residuals of the ripple itself; the headline is the mean per-event "
             "rank IC with its bootstrap CI, p-values from paired Wilcoxon tests on the same events "
             "(docs/ripple-evaluation.md).</p>",
             _table(summary[head]),
             charts.forest_plot(summary, CONTROLS, ORACLES, _v2_confidence(folder))]
    for name, title in _V2_TABLES.items():
        frame = _read(folder / f"v2_{name}.csv")
        if frame is not None and len(frame):
            parts.append(f"<h4>{_esc(title)}</h4>" + _table(frame))
    news = market.news.set_index("id") if market is not None and market.news is not None else None
    parts.append(_event_rankings(folder, summary, news, max_events))
    return "".join(parts)


def _ripple_tables(run: Path) -> str:
    folder = run / "ripple_eval"
    parts = []
    for name, title in _TABLE_TITLES.items():
        frame = _read(folder / f"{name}.csv")
        if frame is not None:
            parts.append(f"<h4>{_esc(title)}</h4>" + _table(frame))
    return "".join(parts) or _missing("ripple evaluation", "kgfin evaluate ripple ... --out RUN/ripple_eval")


def _ripple(run: Path, market: Any, max_events: int) -> str:
    """The ripple section: v2 (the yardstick) first, the paper-analogue tables after it under their own heading."""
    return ('<h3 id="ripple-v2">Ripple evaluation v2: every method on the same candidates</h3>'
            + _ripple_v2(run, market, max_events)
            + '<h3 id="ripple-paper">Paper-analogue tables (FinRipple): each method on its own rows</h3>'
            + _ripple_tables(run))


def _ripple_source(folder: Path) -> str:
    """Where the fusion models' ripple input came from (the run's manifest: label and the score table's metadata)."""
    path = folder / "kgfin-run.json"
    if not path.exists():
        return ""
    manifest = json.loads(path.read_text())
    label = manifest.get("ripple_source")
    if not label:
        return "<p>Ripple input: none (the models were trained without ripple scores).</p>"
    meta = manifest.get("ripple_metadata") or {}
    parts = [f"Ripple input: <b>{_esc(str(label))}</b>"]
    if meta:
        counts = meta.get("counts", {})
        months = meta.get("months") or [""]
        parts.append(f"predictor <code>{_esc(str(meta.get('predictor')))}</code>"
                     + (f", alignment <code>{_esc(str(meta['adapter']))}</code>" if meta.get("adapter") else "")
                     + f", news months {_esc(months[0])}..{_esc(months[-1])}, {meta.get('events_scored', 0)} news "
                       f"items scored")
        if meta.get("knowledge_adapters"):
            used = sorted(set(meta["knowledge_adapters"].values()) - {None})
            parts.append(f"knowledge adapters of {_esc(', '.join(used))} ({_esc(str(meta.get('adapter_policy')))} "
                         "adapter at or before each graph month)")
        if meta.get("in_sample_months"):
            parts.append(f"in-sample for the alignment: {_esc(', '.join(meta['in_sample_months']))}")
        lost = {k: v for k, v in counts.items() if k.startswith("not scored") and v}
        if lost:
            parts.append("not scored: " + _esc("; ".join(f"{k[12:]} {v}" for k, v in lost.items())))
    return "<p>" + "; ".join(parts) + ".</p>"


def _fusion(run: Path, market: Any) -> str:
    folder = run / "fusion"
    results = _read(folder / "results.csv")
    if results is None:
        return _missing("fusion run", "kgfin fuse --out RUN/fusion")
    cols = [c for c in ("model", "ripple", "lo_sharpe", "ls_sharpe", "ic_mean", "ic_t", "mape") if c in results]
    parts = [_ripple_source(folder), _table(results[cols])]
    deciles, cumulative = _read(folder / "deciles.csv"), _read(folder / "cumulative.csv")
    if deciles is not None and len(deciles):
        ranked = _ranked_variants(results, set(deciles["variant"]))
        parts.append(charts.decile_chart(deciles, ranked[0] if ranked else deciles["variant"].iloc[0]))
    if cumulative is not None and len(cumulative):
        parts.append(charts.cumulative_chart(cumulative))
    parts.append(_factor_research(folder, results, market))
    return "".join(parts)


def _ranked_variants(results: pd.DataFrame, known: set[str]) -> list[str]:
    """The fusion results' variant labels (:attr:`kgfin.fusion.run.Variant.label`) among ``known``, best long-short
    Sharpe first (a results row's ``ripple`` is its source's description, "none" without ripple)."""
    from kgfin.fusion.run import Variant

    ranked = results.sort_values("ls_sharpe", ascending=False)
    labels = [Variant(str(r.model), str(r.ripple) != "none", bool(r.lora)).label for r in ranked.itertuples()]
    return [v for v in labels if v in known]


def _factor_research(folder: Path, results: pd.DataFrame, market: Any) -> str:
    """The factor-research conventions (IC decay, rank autocorrelation, turnover, quantile returns with error bars,
    drawdown; :func:`kgfin.fusion.study.factor_tables`) of the best model's out-of-sample signal."""
    path = folder / "predictions.parquet"
    if not path.exists() or market is None or market.returns is None or "ls_sharpe" not in results:
        return _missing("factor-research tables", "they need RUN/fusion/predictions.parquet and RUN/data")
    from kgfin.fusion.study import StudyConfig, factor_tables
    from kgfin.market.returns import monthly_returns

    preds = pd.read_parquet(path)
    test = preds[preds["split"] == "test"]
    ranked = _ranked_variants(results, set(test["variant"]))
    if not ranked:
        return _missing("out-of-sample predictions", "kgfin fuse writes them to predictions.parquet")
    variant = ranked[0]
    signal = test.loc[test["variant"] == variant, ["month", "ticker", "pred"]]
    tables = factor_tables(signal, monthly_returns(market.returns), StudyConfig())
    months = signal["month"].nunique()
    lost = tables["summary"].filter(like="h=1").iloc[0]
    return (f"<h3>Factor research: {_esc(variant)}, out-of-sample signal ({months} months)</h3>"
            "<p>Rank IC of month m's prediction with the return of month m + h (Newey-West t), the signal's rank "
            "autocorrelation and top-decile turnover, mean return by decile with its standard error, and the "
            "cumulative top-minus-bottom return with its drawdown. With few test months these are descriptive: "
            "each table states its n. Rows lost joining the signal to returns at h = 1: "
            + _esc(", ".join(f"{k[4:]} {int(v)}" for k, v in lost.items())) + ".</p>"
            + _table(tables["ic_decay"]) + _table(tables["summary"].drop(columns=list(lost.index)))
            + _table(tables["quantile_returns"])
            + charts.factor_research_chart(tables, f"{variant}, out-of-sample signal"))


def _events(run: Path, market: Any, max_events: int) -> tuple[str, list[tuple[str, str]]]:
    folder = run / "ripple_eval"
    events = _read(folder / "events.csv")
    method, answered, skipped = None, pd.DataFrame(), []
    for m in EVENT_METHOD_ORDER:  # the most informed method that answered at all
        preds = _read(folder / f"predictions-{m}.csv")
        if preds is None:
            continue
        answered = preds[~preds["refused"].astype(bool)]
        if len(answered):
            method = m
            break
        skipped.append(m)
    if events is None or method is None or market is None:
        return _missing("event predictions", "kgfin evaluate ripple ... --out RUN/ripple_eval, with RUN/data"), []
    strength = answered.groupby("event_id")["impact"].apply(lambda s: s.abs().sum()).sort_values(ascending=False)
    chosen = list(strength.index[:max_events])
    from kgfin.market.residuals import residuals

    resid = residuals(market.returns, market.factors_daily).set_index(["date", "ticker"])["resid"]
    truth_path = run / "data" / "truth"
    truth = None
    if truth_path.exists():
        from kgfin.data.loaders import find_table
        from kgfin.data.tables import read_table

        found = find_table(truth_path, "impacts")
        truth = read_table(found).set_index(["event_id", "ticker"])["shock"] if found else None
    news = market.news.set_index("id") if market.news is not None else None
    store = None
    if (run / "graph").exists():
        from kgfin.store import open_store

        store = open_store(run / "graph")
    parts: list[str] = []
    if skipped:
        parts.append(f'<p class="missing">Shown: {_esc(method)}; refused every event: {_esc(", ".join(skipped))}.</p>')
    links = []
    try:
        for k, event_id in enumerate(chosen):
            ev = events[events["event_id"] == event_id].iloc[0]
            rows = answered[answered["event_id"] == event_id].copy()
            day = pd.Timestamp(ev["day"])
            rows["realised_resid"] = [resid.get((day, t), np.nan) for t in rows["ticker"]]
            if truth is not None:
                rows["planted_shock"] = [truth.get((event_id, t), 0.0) for t in rows["ticker"]]
            rows = rows.reindex(rows["impact"].abs().sort_values(ascending=False).index).head(15)
            anchor = f"event-{k + 1}"
            links.append((anchor, f"{event_id}: {news.loc[event_id, 'headline'] if news is not None else ''}"))
            text = news.loc[event_id] if news is not None else None
            html = [f'<div class="event" id="{anchor}"><h3>{_esc(event_id)} ({_esc(str(day.date()))}, '
                    f'graph {_esc(ev["graph_month"])}, method {_esc(method)})</h3>']
            if text is not None:
                html.append(f'<div class="news"><b>{_esc(text["headline"])}</b><br>{_esc(text["body"])}</div>')
            show = rows.drop(columns=["event_id", "date", "refused"])
            html.append(_table(show))
            if store is not None and ev["graph_month"] in set(store.months()):
                snap = store.read_snapshot(ev["graph_month"])
                named = {t: s for t, s in zip(rows["ticker"], rows["named_score"], strict=True) if pd.notna(s)}
                z = dict(zip(rows["ticker"], rows["impact"], strict=True))
                html.append(charts.event_graph(snap, named, z))
            html.append("</div>")
            parts.append("".join(html))
    finally:
        if store is not None:
            store.close()
    return "".join(parts), links


def build_report(run_dir: str | Path, out: str | Path | None = None, max_events: int = 10) -> Path:
    """Write the report of ``run_dir`` (default ``run_dir/report.html``) and return its path."""
    run = Path(run_dir)
    if not run.is_dir():
        raise KgfinError(f"{run} is not a run folder")
    summary, market = _summary(run)
    events_html, links = _events(run, market, max_events)
    nav = "".join(f'<li><a href="#{a}">{_esc(t)}</a></li>' for a, t in links)
    sections = [
        _Section("summary", "Run summary", summary),
        _Section("alignment", "Market alignment", _alignment(run)),
        _Section("ripple", "Ripple evaluation", _ripple(run, market, max_events)),
        _Section("fusion", "Return models and portfolios", _fusion(run, market)),
        _Section("events", "Events", (f"<ol>{nav}</ol>" if nav else "") + events_html),
    ]
    body = "".join(f'<section id="{s.id}"><h2>{_esc(s.title)}</h2>{s.html}</section>' for s in sections)
    menu = "".join(f'<a href="#{s.id}">{_esc(s.title)}</a>' for s in sections)
    page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>kgfin report: {_esc(run.name)}</title>'
            f"<style>{_CSS}</style></head><body><h1>kgfin ripple-analysis report</h1>"
            f"<p>Run folder <code>{_esc(str(run.resolve()))}</code></p><nav>{menu}</nav>{body}</body></html>")
    target = Path(out) if out is not None else run / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(page)
    tmp.replace(target)
    return target
