"""Benchmark: kgfin's vectorised rolling residuals against per-stock statsmodels RollingOLS.

Builds a seeded panel (default 500 stocks x 2,520 trading days, FF5 factors), computes
daily residuals with :func:`kgfin.market.residuals` (tables in, tables out) and with a
loop of ``statsmodels.regression.rolling.RollingOLS`` per stock (``params_only=True``, its
fastest mode, then the same residual arithmetic), and prints the timings, the speed-up
and the largest differences in loadings and residuals. Two panels are run: a complete
one, and one where every stock misses 1 % of its days at random (the slow path).

    .venv/bin/python eval/bench_residuals.py            # full size (about 2 minutes)
    .venv/bin/python eval/bench_residuals.py --stocks 50 --days 600   # quick look
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kgfin.market import FACTOR_MODELS, residuals, to_long

ROOT = Path(__file__).resolve().parent


def make_panel(stocks: int, days: int, missing: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Returns (date, ticker, ret) and FF5 factors (date, ..., rf) with planted loadings."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2000-01-03", periods=days)
    names = list(FACTOR_MODELS["ff5"])
    f = rng.normal(0.0003, [0.010, 0.005, 0.005, 0.002, 0.002], (days, 5))
    rf = np.full(days, 0.0001)
    beta = rng.normal([1.0, 0.2, 0.2, 0.1, 0.0], 0.3, (stocks, 5))
    ret = rf[:, None] + f @ beta.T + rng.standard_t(5, (days, stocks)) * 0.015
    if missing:
        ret[rng.random((days, stocks)) < missing] = np.nan
    wide = pd.DataFrame(ret, index=pd.DatetimeIndex(dates, name="date"),
                        columns=pd.Index([f"S{i:04d}" for i in range(stocks)], name="ticker"))
    factors = pd.DataFrame(f, columns=names).assign(rf=rf)
    factors.insert(0, "date", dates)
    return to_long(wide), factors


def statsmodels_residuals(returns: pd.DataFrame, factors: pd.DataFrame, model: str, window: int,
                          min_obs: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-stock RollingOLS: loadings applied on day d from rows < d, and residuals. (T, N, K), (T, N)."""
    import statsmodels.api as sm
    from statsmodels.regression.rolling import RollingOLS

    cols = list(FACTOR_MODELS[model])
    wide = returns.pivot(index="date", columns="ticker", values="ret").sort_index()
    f = factors.set_index("date").loc[wide.index]
    x = sm.add_constant(f[cols].to_numpy(), has_constant="add")
    excess = wide.to_numpy() - f["rf"].to_numpy()[:, None]
    betas = np.full((*excess.shape, len(cols)), np.nan)
    for n in range(excess.shape[1]):
        params = RollingOLS(excess[:, n], x, window=window, min_nobs=min_obs, expanding=True,
                            missing="drop").fit(params_only=True).params
        betas[1:, n] = params[:-1, 1:]  # applied one day later
    resid = excess - np.einsum("tnk,tk->tn", betas, f[cols].to_numpy())
    return betas, resid


def run(stocks: int, days: int, missing: float, model: str, window: int, min_obs: int, repeats: int,
        seed: int) -> dict[str, float | int | str]:
    returns, factors = make_panel(stocks, days, missing, seed)
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        ours = residuals(returns, factors, model=model, window=window, min_obs=min_obs, keep_betas=True)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    t0, c0 = time.perf_counter(), time.process_time()
    betas, resid = statsmodels_residuals(returns, factors, model, window, min_obs)
    sm_time, sm_cpu = time.perf_counter() - t0, time.process_time() - c0

    wide_beta = np.stack([ours.pivot(index="date", columns="ticker", values=f"beta_{c}").to_numpy()
                          for c in FACTOR_MODELS[model]], axis=-1)
    wide_resid = ours.pivot(index="date", columns="ticker", values="resid").to_numpy()
    same_nan = bool(np.array_equal(np.isnan(wide_resid), np.isnan(resid)))
    ours_s, ours_c = statistics.median(times), statistics.median(cpu)
    return {
        "stocks": stocks, "days": days, "missing_share": missing, "model": model, "window": window,
        "min_obs": min_obs, "kgfin_s": round(ours_s, 3), "statsmodels_s": round(sm_time, 2),
        "speedup_wall": round(sm_time / ours_s, 1), "speedup_cpu": round(sm_cpu / ours_c, 1),
        "max_abs_diff_beta": float(np.nanmax(np.abs(wide_beta - betas))),
        "max_abs_diff_resid": float(np.nanmax(np.abs(wide_resid - resid))),
        "same_missing_pattern": same_nan, "fitted_stock_days": int(np.isfinite(resid).sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stocks", type=int, default=500)
    parser.add_argument("--days", type=int, default=2520)
    parser.add_argument("--model", choices=sorted(FACTOR_MODELS), default="ff5")
    parser.add_argument("--window", type=int, default=252)
    parser.add_argument("--min-obs", type=int, default=126)
    parser.add_argument("--missing", type=float, nargs="*", default=[0.0, 0.01],
                        help="shares of missing stock-days to run (one panel each)")
    parser.add_argument("--repeats", type=int, default=3, help="kgfin runs per panel (median reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench_residuals.json")
    args = parser.parse_args()

    results = [run(args.stocks, args.days, m, args.model, args.window, args.min_obs, args.repeats, args.seed)
               for m in args.missing]
    table = pd.DataFrame(results)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.to_string(index=False))
    for r in results:
        print(f"missing {r['missing_share']:.0%}: kgfin {r['kgfin_s']} s vs statsmodels {r['statsmodels_s']} s "
              f"-> {r['speedup_wall']}x faster (CPU time {r['speedup_cpu']}x); "
              f"max |diff| beta {r['max_abs_diff_beta']:.1e}, resid {r['max_abs_diff_resid']:.1e}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {args.out.relative_to(ROOT.parent) if args.out.is_relative_to(ROOT.parent) else args.out}")


if __name__ == "__main__":
    main()
