"""Where does the model encode the direction of a news item's impact? A probe of next-token log-odds.

For every news item of MONTHS whose focal company has a planted shock (synthetic market),
the analyst prompt is followed by the prefilled answer up to the focal company's name and

* ``type``: ``..."impact_type": "`` -> log p("positive") - log p("negative"),
* ``score``: ``..."impact_type": "<type>", "impact_score": "`` -> log p("1") - log p("-")
  (a score's first token: a digit for a rise, a minus sign for a fall),

and each margin is compared with the planted focal shock: correlation, and the share of
signs right at threshold 0 and at the median margin (what a learnt bias could reach).
This motivated writing the direction as the impact type in constrained decoding
(:mod:`kgfin.llm.grammar`).

    python eval/sign_probe.py --data runs/demo/data --adapters runs/demo/adapters --months 2015-04
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd


def main() -> None:
    import torch

    from kgfin.align.config import AlignConfig, EventConfig
    from kgfin.align.events import news_events
    from kgfin.align.models import knowledge_model
    from kgfin.data import load_market
    from kgfin.data.loaders import find_table
    from kgfin.data.tables import read_table
    from kgfin.llm.generate import chat_prompts
    from kgfin.llm.prompts import ANSWER_PREFIX, SYSTEM_PROMPT, event_messages

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/synth")
    ap.add_argument("--adapters", default="adapters")
    ap.add_argument("--months", default="2015-04", help="comma-separated news months")
    ap.add_argument("--base", action="store_true", help="the base model, without the knowledge adapters")
    args = ap.parse_args()

    market = load_market(args.data, ["companies", "news", "returns"])
    path = find_table(f"{args.data}/truth", "impacts")
    if path is None:
        raise SystemExit(f"{args.data}/truth has no impacts table: the probe needs a synthetic market")
    truth = read_table(path).set_index(["event_id", "ticker"])["shock"]
    events = news_events(market, args.months.split(","), EventConfig(max_events_per_month=None))
    names = dict(zip(market.companies["ticker"], market.companies["name"], strict=True))
    cfg = AlignConfig(knowledge=not args.base)
    probes = {"type": ("", "positive", "negative"), "score": ('positive", "impact_score": "', "1", "-")}
    rows = []
    for graph_month, part in events.groupby("graph_month"):
        model, tok = knowledge_model(cfg, args.adapters, str(graph_month))
        for row, message in zip(part.itertuples(), event_messages(part), strict=True):
            focal = row.tickers[0]
            if (row.event_id, focal) not in truth.index:
                continue
            stem = (chat_prompts(tok, [message], SYSTEM_PROMPT, ANSWER_PREFIX)[0]
                    + f'{names[focal]} ({focal})", "impact_type": "')
            out = {"event_id": row.event_id, "planted": float(truth[(row.event_id, focal)])}
            for probe, (suffix, up, down) in probes.items():
                ids = tok(stem + suffix, return_tensors="pt", add_special_tokens=False)
                with torch.no_grad():
                    logp = torch.log_softmax(model(**ids).logits[0, -1].float(), -1)
                a, b = (tok(w, add_special_tokens=False)["input_ids"][0] for w in (up, down))
                out[probe] = float(logp[a] - logp[b])
            rows.append(out)
    table = pd.DataFrame(rows)
    rise = table["planted"] > 0
    print(f"{len(table)} news items of {args.months}, {'base model' if args.base else 'knowledge adapters'}; "
          f"{rise.mean():.0%} planted rises")
    for probe in probes:
        margin = table[probe]
        print(f"{probe:6s} corr with planted shock {np.corrcoef(margin, table['planted'])[0, 1]:+.2f}  "
              f"signs right at 0: {((margin > 0) == rise).mean():.0%}  at the median: "
              f"{((margin > margin.median()) == rise).mean():.0%}  mean margin {margin.mean():+.2f} nats")


if __name__ == "__main__":
    main()
