"""Charts for the HTML report, rendered by matplotlib as inline SVG text (no files, no network)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from kgfin.graph.snapshot import GraphSnapshot

__all__ = ["RELATION_COLORS", "cumulative_chart", "decile_chart", "event_graph", "factor_research_chart",
           "factor_research_figure", "forest_plot", "training_curves"]

RELATION_COLORS = {"SUPPLIES": "#1f77b4", "SHARES_DIRECTOR": "#2ca02c", "CO_HELD": "#9467bd", "TECH_SIMILAR": "#d62728"}


def _figure(width: float = 7.0, height: float = 3.2) -> Figure:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prologue: the SVG is embedded in HTML


def training_curves(log: pd.DataFrame) -> str:
    """Reward (with its terms), refusal rate and share of +-10 scores, and KL per alignment step; a long run
    (over 40 steps) is drawn as a rolling mean over a twentieth of its steps, so that the trend shows."""
    from matplotlib.ticker import MaxNLocator

    window = max(1, len(log) // 20) if len(log) > 40 else 1

    def smooth(col: str) -> pd.Series:
        return log[col].rolling(window, min_periods=1).mean()

    fig = _figure(8, 3.2)
    left, right = fig.subplots(1, 2)
    for col, label in (("reward", "reward"), ("cos", "cos(Z, eps)"), ("coverage", "coverage"),
                       ("mse", "candidate_mse"), ("ic", "rank IC"), ("refusal_rate", "refusal rate"),
                       ("saturated", "share of +-10 scores")):
        if col in log and log[col].notna().any():
            left.plot(log["step"], smooth(col), label=label, marker="." if len(log) < 40 else None)
    left.set_xlabel("step")
    left.legend(fontsize=7)
    left.set_title("reward per step" + (f" (rolling mean of {window})" if window > 1 else ""), fontsize=10)
    if "kl" in log:
        right.plot(log["step"], smooth("kl"), color="#d62728")
    right.set_xlabel("step")
    right.set_title("KL to the reference (per answer)", fontsize=10)
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    return _svg(fig)


def cumulative_chart(cumulative: pd.DataFrame, column: str = "long_short", top: int = 6) -> str:
    """Cumulative monthly returns of the fusion models' portfolios (``cumulative.csv`` of ``kgfin fuse``)."""
    fig = _figure()
    ax = fig.subplots()
    for variant, part in list(cumulative.groupby("variant", sort=False))[:top]:
        ax.plot(part["month"], np.cumprod(1 + part[column].to_numpy()) - 1, label=variant)
    ax.set_title(f"cumulative {column.replace('_', '-')} return", fontsize=10)
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    ax.legend(fontsize=7)
    return _svg(fig)


def decile_chart(deciles: pd.DataFrame, variant: str) -> str:
    """Annualised return of each decile portfolio of one model."""
    part = deciles[deciles["variant"] == variant]
    fig = _figure(6, 2.8)
    ax = fig.subplots()
    ax.bar(part["group"], part["annual_return"], color=["#d62728" if v < 0 else "#2ca02c" for v in part["annual_return"]])
    ax.set_title(f"decile portfolios, {variant}: annualised return", fontsize=10)
    ax.tick_params(axis="x", labelsize=7)
    return _svg(fig)


def factor_research_figure(tables: dict[str, pd.DataFrame], title: str) -> Figure:
    """The factor-research conventions of one signal (:func:`kgfin.fusion.study.factor_tables`): mean monthly return
    by quantile with 95 % error bars, rank IC by horizon, cumulative top-minus-bottom return with its drawdown
    shaded."""
    fig = _figure(12, 3.4)
    axes = fig.subplots(1, 3)
    q = tables["quantile_returns"]
    axes[0].bar(q["quantile"], q["mean return"], yerr=1.96 * q["std error"], capsize=3)
    axes[0].set_title("mean monthly return by quantile (95 % error bars)", fontsize=9)
    axes[0].set_xlabel("quantile")
    d = tables["ic_decay"]
    axes[1].bar(d["horizon"], d["mean IC"])
    axes[1].set_title("rank IC by horizon (months ahead)", fontsize=9)
    axes[1].set_xlabel("horizon")
    ls = tables["long_short"]
    x = np.arange(len(ls))
    axes[2].plot(x, ls["cumulative"], label="cumulative long-short")
    axes[2].fill_between(x, ls["cumulative"], (1 + ls["cumulative"]) / (1 + ls["drawdown"]) - 1, color="red",
                         alpha=0.25, label="drawdown")
    step = max(1, len(ls) // 8)
    axes[2].set_xticks(x[::step], [str(m) for m in ls.iloc[::step, 0]], rotation=45, fontsize=7)
    axes[2].set_title("cumulative top - bottom quantile, drawdown shaded", fontsize=9)
    axes[2].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return fig


def factor_research_chart(tables: dict[str, pd.DataFrame], title: str) -> str:
    """:func:`factor_research_figure` as inline SVG."""
    return _svg(factor_research_figure(tables, title))


def event_graph(snapshot: GraphSnapshot, named: dict[str, float], z: dict[str, float]) -> str:
    """The named companies, the companies their ripple reaches, and the month's edges between them."""
    import networkx as nx

    nodes = list(dict.fromkeys([*named, *z]))
    edges = snapshot.edge_table()
    edges = edges[edges["source"].isin(nodes) & edges["target"].isin(nodes)
                  & (edges["source"].isin(named) | edges["target"].isin(named))]
    g = nx.Graph()
    g.add_nodes_from(nodes)
    for r in edges.itertuples():
        g.add_edge(r.source, r.target, relation=r.relation, weight=float(r.weight))
    pos = nx.spring_layout(g, seed=0, k=1.2 / max(1, len(nodes)) ** 0.5)
    fig = _figure(6, 4)
    ax = fig.subplots()
    ax.axis("off")
    for u, v, data in g.edges(data=True):
        ax.plot([pos[u][0], pos[v][0]], [pos[u][1], pos[v][1]], color=RELATION_COLORS[data["relation"]],
                linewidth=0.8 + 3 * data["weight"], alpha=0.7, zorder=1)
        mid = (pos[u] + pos[v]) / 2
        ax.text(mid[0], mid[1], f"{data['weight']:.2f}", fontsize=6, color="#555")
    scale = max([abs(v) for v in z.values()] + [1e-12])
    for n in nodes:
        value = z.get(n, 0.0)
        ax.scatter(*pos[n], s=150 + 600 * abs(value) / scale, color="#2ca02c" if value >= 0 else "#d62728",
                   edgecolors="black" if n in named else "none", linewidths=2, zorder=2)
        ax.text(pos[n][0], pos[n][1] + 0.06, f"{n} {value:+.3f}", fontsize=7, ha="center", zorder=3)
    for rel, color in RELATION_COLORS.items():
        ax.plot([], [], color=color, label=rel)
    ax.legend(fontsize=6, loc="lower left")
    return _svg(fig)


def forest_plot(summary: pd.DataFrame, controls: tuple[str, ...] = (), ceilings: tuple[str, ...] = (),
                confidence: float = 0.95, value: str = "mean rank IC", low: str = "CI low", high: str = "CI high") -> str:
    """Mean per-event rank IC and its CI, one line per method (the v2 summary table), with 0 marked: a row whose
    interval crosses 0 has not shown a ripple signal. Controls (must cover 0) grey, ceilings (oracles) orange."""
    rows = summary.dropna(subset=[value]).iloc[::-1]  # first row on top
    fig = _figure(7, 0.9 + 0.32 * max(len(rows), 1))
    ax = fig.subplots()
    y = np.arange(len(rows))
    colors = ["#999999" if m in controls else "#ff7f0e" if m in ceilings else "#1f77b4" for m in rows["method"]]
    mean = rows[value].to_numpy(dtype=float)
    err = np.vstack([mean - rows[low].to_numpy(dtype=float), rows[high].to_numpy(dtype=float) - mean])
    for k in range(len(rows)):
        ax.errorbar(mean[k], y[k], xerr=err[:, k:k + 1], fmt="o", color=colors[k], capsize=3, markersize=4)
    ax.axvline(0.0, color="black", linewidth=0.8, linestyle="--")
    n = rows["events"].astype(int).astype(str) if "events" in rows else pd.Series([""] * len(rows))
    ax.set_yticks(y, [f"{m} (n={k})" for m, k in zip(rows["method"], n, strict=True)], fontsize=8)
    ax.set_xlabel(f"{value} per event, mean with {confidence:.0%} bootstrap CI", fontsize=9)
    ax.set_title("ripple evaluation v2: every method on the same candidates", fontsize=10)
    return _svg(fig)
