"""The report's ripple section: the v2 table and forest plot lead, per-event rankings beside the truth, the paper
tables after them under their own heading (a run folder with only ripple_eval/ in it)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kgfin.report import build_report, charts


def _run(tmp_path):
    folder = tmp_path / "run" / "ripple_eval"
    folder.mkdir(parents=True)
    pd.DataFrame({"method": ["random", "propagation_only", "rule_oracle"], "events": [40, 40, 40],
                  "mean rank IC": [0.001, 0.02, 0.09], "CI low": [-0.01, 0.0, 0.05], "CI high": [0.012, 0.04, 0.13],
                  "p vs propagation_only": [0.2, np.nan, 0.001], "recall@10": [0.2, 0.5, 0.8]}
                 ).to_csv(folder / "v2_summary.csv", index=False)
    rows = []
    for method, scores in (("propagation_only", [0.3, 0.0, -0.1]), ("rule_oracle", [0.0, -0.02, 0.04]),
                           ("random", [1.0, 2.0, 3.0])):
        for ticker, score, move, planted in zip(("AAA", "BBB", "CCC"), scores, (0.01, -0.03, 0.02),
                                                (0.0, -0.02, 0.03), strict=True):
            rows.append({"method": method, "event_id": "E1", "ticker": ticker, "score": score, "neighbour": True,
                         "move": move, "planted": planted})
    pd.DataFrame(rows).to_csv(folder / "v2_scores.csv", index=False)
    pd.DataFrame({"method": ["propagation_only", "rule_oracle"], "event_id": ["E1", "E1"], "variant": ["focal"] * 2,
                  "ic_h1": [0.5, 1.0]}).to_csv(folder / "v2_per_event.csv", index=False)
    pd.DataFrame({"strategy": ["long_short:x"], "periods": [21], "sharpe": [np.nan],
                  "shown": ["21 < 60 periods: no Sharpe, drawdown or annual return"]}
                 ).to_csv(folder / "long_short.csv", index=False)
    return folder.parent


def test_v2_leads_the_ripple_section_with_a_forest_plot_and_rankings(tmp_path) -> None:
    page = build_report(_run(tmp_path)).read_text()
    ripple = page[page.index('<section id="ripple">'):page.index('<section id="fusion">')]
    assert ripple.index('id="ripple-v2"') < ripple.index("<svg") < ripple.index('id="ripple-paper"')
    assert ripple.index('id="ripple-paper"') < ripple.index("Table 3 analogue")
    assert "mean rank IC" in ripple and "21 &lt; 60 periods" in ripple
    rankings = ripple[ripple.index("Per event"):ripple.index('id="ripple-paper"')]
    # propagation_only's ranking by |score|: AAA then CCC (BBB has no view); the planted truth: CCC, then BBB (bold)
    assert rankings.index("AAA +0.3") < rankings.index("<b>CCC</b> -0.1")
    assert "<b>CCC</b> +0.03" in rankings and "<b>BBB</b> -0.02" in rankings
    assert "rule_oracle +1.000" in rankings and "random" not in rankings  # controls are not ranked
    assert "ripple evaluation v2" in charts.forest_plot(pd.read_csv(tmp_path / "run" / "ripple_eval" /
                                                                    "v2_summary.csv"))


def test_a_run_without_v2_says_so(tmp_path) -> None:
    run = tmp_path / "old"
    run.mkdir()
    page = build_report(run).read_text()
    assert "No ripple evaluation v2 in this run" in page and 'id="ripple-paper"' in page


def test_the_best_fusion_variant_keeps_its_ripple_and_lora_suffixes() -> None:
    from kgfin.report.html import _ranked_variants

    results = pd.DataFrame({"model": ["finin", "finin", "mixture_decoupled", "finin"],
                            "ripple": ["none", "aligned ripple scores (9 news items)", "none", "none"],
                            "lora": [False, False, False, True], "ls_sharpe": [0.5, 2.0, 1.0, 3.0]})
    known = {"finin", "finin+ripple", "mixture_decoupled"}  # no LoRA variant among the predictions
    assert _ranked_variants(results, known) == ["finin+ripple", "mixture_decoupled", "finin"]
