"""News events, their planted price shocks, and how the shocks ripple through the true graph.

Every event has a focal company (always named in the news), sometimes a counterpart
(named too), a signed focal shock whose size depends on details the text states
(weeks of outage, size of the surprise, deal premium, ...), and :class:`Rule`s that
carry the shock to neighbours in that month's true graph:

    neighbour shock = rule multiplier x edge strength x source shock

Rules depend on the event type, not just on the relation: a supplier's plant outage
hurts its customers while its capacity expansion helps them and its price increase
hurts them; a contract win hurts technical competitors while a sector-wide regulation
hurts them all; an executive moving between two named firms moves them in opposite
directions. A second hop continues along supply links in the same direction, damped.

Edge strengths (all in [0, 1]):

* customers of X: sqrt(share of the customer's purchases that come from X)
* suppliers of X: sqrt(share of the supplier's sales that go to X)
* technical competitors: latent CPC-profile correlation (top-k per firm)
* board links: min(1, shared directors / 2)
* fund links: common-holding overlap sum_f min(w_fX, w_fY), scaled by X's largest overlap
  (top partners only)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = [
    "EVENT_BY_NAME", "EVENT_TYPES", "Effect", "EventType", "MonthGraph", "Rule", "compose_news",
    "event_table", "path_text", "propagate",
]

Relation = Literal["customers", "suppliers", "tech_peers", "board", "fund"]
RELATION_LABEL = {
    "customers": "SUPPLIES", "suppliers": "SUPPLIES", "tech_peers": "TECH_SIMILAR",
    "board": "SHARES_DIRECTOR", "fund": "CO_HELD",
}


@dataclass(frozen=True)
class Rule:
    """Carries a source company's shock to its neighbours of one relation."""

    name: str
    relation: Relation
    mult: float  # signed: +1 same direction as the source's shock, -1 opposite
    source: Literal["focal", "counterpart"] = "focal"


Details = dict[str, object]


@dataclass(frozen=True)
class EventType:
    """One kind of news event."""

    name: str
    kind: Literal["hard", "soft"]  # hard events ripple; soft news moves only the focal stock
    sign: int
    size: float  # mean |focal shock| at magnitude 1
    weight: float  # relative frequency among events of its kind
    detail: Callable[[np.random.Generator], tuple[Details, float]]  # text details and magnitude
    headlines: tuple[str, ...]
    sentences: tuple[tuple[str, ...], ...]  # pools: lead, context and (optional) extras
    rules: tuple[Rule, ...] = ()
    counterpart: Literal["supplier", "customer", "tech_peer", "same_sector", "target"] | None = None
    counterpart_mult: float = 0.0  # counterpart shock = this x focal shock


_CITIES = ("Austin", "Monterrey", "Penang", "Rotterdam", "Busan", "Columbus", "Lyon", "Osaka",
           "Chennai", "Wroclaw", "Tijuana", "Nagoya", "Leipzig", "Taichung", "Houston", "Graz")
_FIRST = ("Anna", "David", "Maria", "James", "Elena", "Robert", "Sofia", "Michael", "Laura", "Thomas",
          "Priya", "Daniel", "Chen", "Olivia", "Marcus", "Hannah", "Victor", "Grace", "Samuel", "Nadia")
_LAST = ("Keller", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Brennan", "Costa", "Novak", "Adler",
         "Haddad", "Whitfield", "Iyer", "Rasmussen", "Ortega", "Kowalski", "Fischer", "Mendes", "Hale")
_BROKERS = ("Harbor Street Securities", "Lanton Research", "Meridian Equity Partners",
            "Caldwell & Pryce", "Northgate Capital Markets", "Ashby Brothers")
_PRODUCTS = ("flagship product line", "new platform", "next-generation model", "core product")


def _person(rng: np.random.Generator) -> str:
    return f"{_FIRST[rng.integers(len(_FIRST))]} {_LAST[rng.integers(len(_LAST))]}"


def _earnings(direction: int) -> Callable[[np.random.Generator], tuple[Details, float]]:
    def detail(rng: np.random.Generator) -> tuple[Details, float]:
        surprise = float(rng.uniform(5, 35))
        est = float(rng.uniform(0.3, 3.0))
        eps = est * (1 + direction * surprise / 100)
        return {"surprise": surprise, "est": est, "eps": eps}, float(np.clip(surprise / 15, 0.4, 2.2))
    return detail


def _guidance(rng: np.random.Generator) -> tuple[Details, float]:
    pct = float(rng.uniform(3, 15))
    return {"pct": pct}, pct / 8


def _recall(rng: np.random.Generator) -> tuple[Details, float]:
    units = int(10 ** rng.uniform(4, 6.3))
    return {"units": f"{units:,}", "product": _PRODUCTS[rng.integers(len(_PRODUCTS))]}, 0.3 + np.log10(units) / 6


def _outage(rng: np.random.Generator) -> tuple[Details, float]:
    weeks = int(rng.integers(1, 11))
    return {"weeks": weeks, "city": _CITIES[rng.integers(len(_CITIES))],
            "cause": ("a fire", "flooding", "an equipment failure", "a power failure")[rng.integers(4)]}, 0.4 + weeks / 6


def _expansion(rng: np.random.Generator) -> tuple[Details, float]:
    pct = float(rng.uniform(10, 50))
    return {"pct": pct, "city": _CITIES[rng.integers(len(_CITIES))], "capex": float(rng.uniform(0.2, 3.0))}, pct / 30


def _price(rng: np.random.Generator) -> tuple[Details, float]:
    pct = float(rng.uniform(3, 15))
    return {"pct": pct}, pct / 8


def _insourcing(rng: np.random.Generator) -> tuple[Details, float]:
    share = float(rng.uniform(20, 80))
    return {"share": share}, share / 50


def _contract(rng: np.random.Generator) -> tuple[Details, float]:
    value = float(rng.uniform(0.1, 2.5))
    years = int(rng.integers(2, 8))
    return {"value": value, "years": years}, 0.5 + value / 2


def _executive(rng: np.random.Generator) -> tuple[Details, float]:
    return {"exec": _person(rng), "tenure": int(rng.integers(3, 15))}, float(rng.uniform(0.7, 1.3))


def _lawsuit(rng: np.random.Generator) -> tuple[Details, float]:
    damages = float(rng.uniform(0.1, 2.0))
    return {"damages": damages}, 0.5 + damages / 2


def _acquisition(rng: np.random.Generator) -> tuple[Details, float]:
    premium = float(rng.uniform(15, 45))
    return {"premium": premium, "price": float(rng.uniform(0.5, 12))}, premium / 30


def _patent(rng: np.random.Generator) -> tuple[Details, float]:
    return {"count": int(rng.integers(1, 6))}, float(rng.uniform(0.7, 1.3))


def _regulation(rng: np.random.Generator) -> tuple[Details, float]:
    cost = float(rng.uniform(20, 400))
    return {"cost": cost, "agency": ("federal", "EU", "state")[rng.integers(3)]}, 0.5 + cost / 250


def _analyst(rng: np.random.Generator) -> tuple[Details, float]:
    return {"broker": _BROKERS[rng.integers(len(_BROKERS))], "target": float(rng.uniform(20, 250))}, float(rng.uniform(0.6, 1.4))


def _review(rng: np.random.Generator) -> tuple[Details, float]:
    return {"product": _PRODUCTS[rng.integers(len(_PRODUCTS))]}, float(rng.uniform(0.6, 1.4))


_EXTRA = ("Shares were indicated {direction} in early trading.", "The company will discuss the matter on a call with investors.")

EVENT_TYPES: tuple[EventType, ...] = (
    EventType(
        "earnings_beat", "hard", +1, 0.040, 1.5, _earnings(+1),
        ("{name} beats estimates as quarterly EPS hits ${eps:.2f}", "{name} tops profit forecasts by {surprise:.0f}%",
         "{name} quarterly earnings surpass expectations"),
        (("{name} ({ticker}) reported quarterly earnings of ${eps:.2f} per share, {surprise:.0f}% above the ${est:.2f} analysts had expected.",),
         ("Management pointed to firm pricing and steady demand in its {sub} business.", "Revenue also came in ahead of consensus, helped by strong orders."),
         ("The company reaffirmed its full-year outlook.", *_EXTRA)),
        (Rule("earnings_read_through_to_peers", "tech_peers", +0.25), Rule("demand_signal_to_suppliers", "suppliers", +0.20),
         Rule("board_network_sentiment", "board", +0.10), Rule("fund_flow_comovement", "fund", +0.10)),
    ),
    EventType(
        "earnings_miss", "hard", -1, 0.050, 1.5, _earnings(-1),
        ("{name} misses estimates as quarterly EPS falls to ${eps:.2f}", "{name} profit falls {surprise:.0f}% short of forecasts",
         "{name} quarterly earnings disappoint"),
        (("{name} ({ticker}) reported quarterly earnings of ${eps:.2f} per share, {surprise:.0f}% below the ${est:.2f} analysts had expected.",),
         ("Management cited weaker demand and rising costs in its {sub} business.", "Revenue also fell short of consensus as orders slowed."),
         ("The company said it is reviewing its cost base.", *_EXTRA)),
        (Rule("earnings_read_through_to_peers", "tech_peers", +0.25), Rule("demand_signal_to_suppliers", "suppliers", +0.20),
         Rule("board_network_sentiment", "board", +0.10), Rule("fund_flow_comovement", "fund", +0.10)),
    ),
    EventType(
        "guidance_raise", "hard", +1, 0.035, 0.8, _guidance,
        ("{name} raises full-year outlook", "{name} lifts revenue guidance by {pct:.0f}%"),
        (("{name} ({ticker}) raised its full-year revenue guidance by {pct:.0f}%, citing a growing order backlog.",),
         ("The company said it expects to step up purchases of components and materials to meet demand.",),
         ("Executives said the strength was broad-based across regions.", *_EXTRA)),
        (Rule("order_outlook_to_suppliers", "suppliers", +0.45), Rule("demand_read_through_to_peers", "tech_peers", +0.15),
         Rule("fund_flow_comovement", "fund", +0.10)),
    ),
    EventType(
        "guidance_cut", "hard", -1, 0.045, 0.8, _guidance,
        ("{name} cuts full-year outlook", "{name} lowers revenue guidance by {pct:.0f}%"),
        (("{name} ({ticker}) cut its full-year revenue guidance by {pct:.0f}%, citing order cancellations.",),
         ("The company said it will reduce purchases of components and materials for the rest of the year.",),
         ("Executives said the weakness was concentrated in its largest markets.", *_EXTRA)),
        (Rule("order_outlook_to_suppliers", "suppliers", +0.45), Rule("demand_read_through_to_peers", "tech_peers", +0.15),
         Rule("fund_flow_comovement", "fund", +0.10)),
    ),
    EventType(
        "product_recall", "hard", -1, 0.050, 0.5, _recall,
        ("{name} recalls {units} units over faulty part", "{name} announces recall of its {product}"),
        (("{name} ({ticker}) is recalling {units} units of its {product} after finding a defect in a component supplied by {cp}.",),
         ("The company said it is working with {cp} to replace the affected parts.", "Regulators were notified and no injuries have been reported."),
         ("Analysts expect some customers to switch to rival products while the recall runs.", *_EXTRA)),
        (Rule("recall_shifts_share_to_peers", "tech_peers", -0.30), Rule("recall_hits_customers", "customers", +0.20)),
        counterpart="supplier", counterpart_mult=+0.7,
    ),
    EventType(
        "plant_outage", "hard", -1, 0.040, 0.6, _outage,
        ("{name} halts production at {city} plant after {cause}", "{name} plant outage expected to last {weeks} weeks"),
        (("{name} ({ticker}) halted production at its {city} plant after {cause} and expects the outage to last about {weeks} weeks.",),
         ("The company warned that deliveries to customers will be delayed until output resumes.",),
         ("It said inventories cover only part of the shortfall.", *_EXTRA)),
        (Rule("outage_disrupts_customers", "customers", +0.60), Rule("outage_shifts_orders_to_peers", "tech_peers", -0.35),
         Rule("outage_cuts_supplier_orders", "suppliers", +0.20)),
    ),
    EventType(
        "capacity_expansion", "hard", +1, 0.025, 0.6, _expansion,
        ("{name} to expand capacity by {pct:.0f}%", "{name} announces new {city} facility"),
        (("{name} ({ticker}) will raise production capacity by {pct:.0f}% with a ${capex:.1f} billion facility in {city}.",),
         ("The company said the added output will ease supply for its customers and lower their costs.",),
         ("The expansion is expected to intensify price competition in the {sub} market.", *_EXTRA)),
        (Rule("expansion_eases_customer_supply", "customers", +0.40), Rule("expansion_pressures_peers", "tech_peers", -0.45),
         Rule("expansion_orders_to_suppliers", "suppliers", +0.30)),
    ),
    EventType(
        "price_increase", "hard", +1, 0.025, 0.5, _price,
        ("{name} raises prices by {pct:.0f}%", "{name} announces {pct:.0f}% price increase"),
        (("{name} ({ticker}) will raise list prices across its range by {pct:.0f}% from next month.",),
         ("Customers will bear higher input costs as the increase takes effect.",),
         ("Analysts said the move signals pricing power across the {sub} industry.", *_EXTRA)),
        (Rule("price_hike_squeezes_customers", "customers", -0.50), Rule("price_hike_lifts_peers", "tech_peers", +0.30)),
    ),
    EventType(
        "insourcing", "hard", +1, 0.020, 0.4, _insourcing,
        ("{name} to bring component production in-house", "{name} moves to insource {share:.0f}% of component spend"),
        (("{name} ({ticker}) said it will produce {share:.0f}% of the components it now buys from outside suppliers in-house.",),
         ("The company expects the move to cut costs over the next two years.",),
         ("Contracts with external suppliers will be wound down as they expire.", *_EXTRA)),
        (Rule("insourcing_hits_suppliers", "suppliers", -0.60),),
    ),
    EventType(
        "contract_win", "hard", +1, 0.035, 0.8, _contract,
        ("{name} wins ${value:.1f} billion contract from {cp}", "{cp} awards {name} multi-year deal"),
        (("{name} ({ticker}) won a {years}-year contract worth ${value:.1f} billion from {cp}.",),
         ("The award followed a competitive tender among several {sub} suppliers.",),
         ("{name} said it will add staff and raise purchases to fulfil the contract.", *_EXTRA)),
        (Rule("contract_won_from_peers", "tech_peers", -0.50), Rule("contract_orders_to_suppliers", "suppliers", +0.35)),
        counterpart="customer", counterpart_mult=+0.15,
    ),
    EventType(
        "contract_loss", "hard", -1, 0.040, 0.5, _contract,
        ("{name} loses ${value:.1f} billion contract with {cp}", "{cp} ends supply deal with {name}"),
        (("{cp} will not renew its {years}-year, ${value:.1f} billion contract with {name} ({ticker}).",),
         ("The business is expected to go to another {sub} supplier after a new tender.",),
         ("{name} said it will scale back production and purchasing accordingly.", *_EXTRA)),
        (Rule("contract_lost_to_peers", "tech_peers", -0.40), Rule("contract_loss_cuts_suppliers", "suppliers", +0.30)),
        counterpart="customer", counterpart_mult=0.0,
    ),
    EventType(
        "ceo_departure", "hard", -1, 0.030, 0.4, _executive,
        ("{name} CEO {exec} leaves to run {cp}", "{cp} poaches {name} chief executive {exec}"),
        (("{name} ({ticker}) said chief executive {exec} will step down to become CEO of {cp}.",),
         ("{exec} led {name} for {tenure} years; the board has begun a search for a successor.",),
         ("Investors in {cp} welcomed the appointment.", *_EXTRA)),
        (Rule("leadership_shock_board_links", "board", +0.15),),
        counterpart="same_sector", counterpart_mult=-0.8,
    ),
    EventType(
        "lawsuit", "hard", -1, 0.030, 0.5, _lawsuit,
        ("{cp} sues {name} for patent infringement", "{name} faces ${damages:.1f} billion patent suit from {cp}"),
        (("{cp} filed a patent-infringement lawsuit against {name} ({ticker}), seeking ${damages:.1f} billion in damages.",),
         ("The suit also asks for an injunction that could halt some of {name}'s product shipments.",),
         ("{name} said it will defend itself vigorously.", *_EXTRA)),
        (Rule("injunction_risk_to_customers", "customers", +0.20),),
        counterpart="tech_peer", counterpart_mult=-0.4,
    ),
    EventType(
        "acquisition", "hard", -1, 0.025, 0.3, _acquisition,
        ("{name} to acquire {cp} at {premium:.0f}% premium", "{name} agrees ${price:.1f} billion deal for {cp}"),
        (("{name} ({ticker}) agreed to acquire {cp} for ${price:.1f} billion in cash, a {premium:.0f}% premium to its last close.",),
         ("The deal is expected to close within twelve months, subject to regulatory approval.",),
         ("Bankers said the price could prompt bids for other {sub} companies.", *_EXTRA)),
        (Rule("takeover_speculation_target_peers", "tech_peers", +0.20, source="counterpart"),),
        counterpart="target", counterpart_mult=-5.0,
    ),
    EventType(
        "patent_grant", "hard", +1, 0.015, 0.8, _patent,
        ("{name} granted key {sub} patents", "{name} secures {count} patents on core technology"),
        (("{name} ({ticker}) was granted {count} patents covering a core {sub} technology.",),
         ("The company said the patents protect its technical lead over competing designs.",),
         ("It plans to license the technology selectively.", *_EXTRA)),
        (Rule("patent_moat_vs_peers", "tech_peers", -0.40),),
    ),
    EventType(
        "regulation", "hard", -1, 0.030, 0.4, _regulation,
        ("New {agency} rules hit {sub} makers; {name} first to put a cost on them", "{name} says sector-wide rules will cost ${cost:.0f} million"),
        (("New {agency} regulations will apply to every company in the {sub} industry, and {name} ({ticker}) was the first to estimate the cost, at ${cost:.0f} million a year.",),
         ("The rules require changes to products and production processes across the sector.",),
         ("Part of the cost is expected to be passed on to customers.", *_EXTRA)),
        (Rule("sector_regulation_hits_peers", "tech_peers", +0.80), Rule("regulation_cost_to_customers", "customers", +0.15)),
    ),
    EventType(
        "analyst_upgrade", "soft", +1, 0.012, 1.0, _analyst,
        ("{broker} upgrades {name} to buy", "{name} upgraded at {broker}"),
        (("{broker} upgraded {name} ({ticker}) to buy with a price target of ${target:.0f}.",),
         ("The broker cited improving margins.", "The analyst said expectations look too low."),),
    ),
    EventType(
        "analyst_downgrade", "soft", -1, 0.015, 1.0, _analyst,
        ("{broker} downgrades {name} to sell", "{name} downgraded at {broker}"),
        (("{broker} downgraded {name} ({ticker}) to sell with a price target of ${target:.0f}.",),
         ("The broker cited slowing growth.", "The analyst said expectations look too high."),),
    ),
    EventType(
        "product_review_positive", "soft", +1, 0.008, 0.7, _review,
        ("Reviewers praise {name}'s {product}", "{name}'s {product} wins strong reviews"),
        (("Early reviews of {name}'s ({ticker}) {product} have been strongly positive.",),
         ("Several reviewers called it the best in its class.",),),
    ),
    EventType(
        "product_review_negative", "soft", -1, 0.010, 0.7, _review,
        ("Reviewers pan {name}'s {product}", "{name}'s {product} draws poor reviews"),
        (("Early reviews of {name}'s ({ticker}) {product} have been largely negative.",),
         ("Several reviewers pointed to reliability problems.",),),
    ),
)
EVENT_BY_NAME = {e.name: e for e in EVENT_TYPES}


def compose_news(et: EventType, slots: dict[str, object], rng: np.random.Generator) -> tuple[str, str]:
    """Headline and a 2-4 sentence body: a lead, a context sentence and up to two extras.

    The text names the focal firm and the counterpart only, never the wider set of firms
    the event affects.
    """
    slots = {"direction": "higher" if et.sign > 0 else "lower", **slots}
    headline = et.headlines[rng.integers(len(et.headlines))].format(**slots)
    lead, context, *rest = et.sentences
    sentences = [lead[rng.integers(len(lead))], context[rng.integers(len(context))]]
    extras = rest[0] if rest else ()
    n_extra = min(len(extras), int(rng.choice(3, p=[0.3, 0.45, 0.25])))
    sentences += [extras[i] for i in sorted(rng.choice(len(extras), size=n_extra, replace=False))]
    return headline, " ".join(x.format(**slots) for x in sentences)


@dataclass
class MonthGraph:
    """The true relation strengths of one month, as (N, N) sparse matrices indexed [source, neighbour]."""

    customers: sp.csr_matrix  # [X, customer]: sqrt(customer's purchase share from X)
    suppliers: sp.csr_matrix  # [X, supplier]: sqrt(supplier's sales share to X)
    tech_peers: sp.csr_matrix
    board: sp.csr_matrix
    fund: sp.csr_matrix
    board_counts: sp.csr_matrix = field(repr=False, default=None)  # type: ignore[assignment]

    @classmethod
    def build(cls, supply: sp.csr_matrix, tech: sp.csr_matrix, interlocks: sp.csr_matrix,
              holdings: sp.csr_matrix, fund_partners: int) -> MonthGraph:
        purchases = np.asarray(supply.sum(axis=0)).ravel()
        sales = np.asarray(supply.sum(axis=1)).ravel()
        coo = supply.tocoo()
        n = supply.shape[0]
        cust = sp.csr_matrix((np.sqrt(coo.data / purchases[coo.col]), (coo.row, coo.col)), shape=(n, n))
        supp = sp.csr_matrix((np.sqrt(coo.data / sales[coo.row]), (coo.col, coo.row)), shape=(n, n))
        board = interlocks.copy()
        board.data = np.minimum(1.0, board.data / 2.0)
        return cls(cust, supp, tech, board, _fund_partners(holdings, fund_partners), interlocks)

    def neighbours(self, relation: Relation, node: int) -> tuple[np.ndarray, np.ndarray]:
        m: sp.csr_matrix = getattr(self, relation)
        lo, hi = m.indptr[node], m.indptr[node + 1]
        return m.indices[lo:hi], m.data[lo:hi]


def _fund_partners(holdings: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """(N, N) top-``k`` co-holding partners per firm by overlap sum_f min(w_fi, w_fj), row-scaled to max 1."""
    n = holdings.shape[1]
    rows, cols, vals = [], [], []
    for f in range(holdings.shape[0]):
        lo, hi = holdings.indptr[f], holdings.indptr[f + 1]
        firms, w = holdings.indices[lo:hi], holdings.data[lo:hi]
        if firms.size < 2:
            continue
        mins = np.minimum.outer(w, w)
        i, j = np.nonzero(~np.eye(firms.size, dtype=bool))
        rows.append(firms[i])
        cols.append(firms[j])
        vals.append(mins[i, j])
    if not rows:
        return sp.csr_matrix((n, n))
    overlap = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    overlap.sum_duplicates()
    coo = overlap.tocoo()
    order = np.lexsort((-coo.data, coo.row))
    r, c, v = coo.row[order], coo.col[order], coo.data[order]
    starts = np.searchsorted(r, r, side="left")
    rank = np.arange(r.size) - starts
    keep = rank < k
    r, c, v = r[keep], c[keep], v[keep]
    row_max = np.zeros(n)
    np.maximum.at(row_max, r, v)
    return sp.csr_matrix((v / row_max[r], (r, c)), shape=(n, n))


@dataclass(frozen=True)
class Effect:
    """One path by which an event's shock reaches a company."""

    node: int
    hop: int
    relation: str
    rule: str
    path: tuple[int, ...]
    shock: float


def propagate(
    et: EventType, focal: int, counterpart: int | None, focal_shock: float,
    graph: MonthGraph, hop_damping: float, min_effect: float = 0.0,
) -> list[Effect]:
    """All planted effects of one event: the focal firm, the counterpart, and the ripple.

    Ripple paths whose shock is below ``min_effect`` in absolute value are not planted
    (a second hop is always smaller than its first, so it is dropped with it).
    """
    effects = [Effect(focal, 0, "FOCAL", "direct", (focal,), focal_shock)]
    sources = {"focal": (focal, focal_shock)}
    if counterpart is not None:
        cp_shock = et.counterpart_mult * focal_shock
        sources["counterpart"] = (counterpart, cp_shock)
        if cp_shock != 0.0:
            effects.append(Effect(counterpart, 0, "COUNTERPART", "named_counterpart", (focal, counterpart), cp_shock))
    for rule in et.rules:
        if rule.source not in sources:
            continue
        src, src_shock = sources[rule.source]
        nbrs, strength = graph.neighbours(rule.relation, src)
        for j, s in zip(nbrs, strength, strict=True):
            if j == focal:
                continue
            shock = rule.mult * s * src_shock
            if abs(shock) < min_effect or shock == 0.0:
                continue
            effects.append(Effect(int(j), 1, RELATION_LABEL[rule.relation], rule.name, (src, int(j)), shock))
            if rule.relation in ("customers", "suppliers") and hop_damping > 0:
                nbrs2, strength2 = graph.neighbours(rule.relation, int(j))
                for k, s2 in zip(nbrs2, strength2, strict=True):
                    shock2 = hop_damping * s2 * shock
                    if k in (focal, j) or abs(shock2) < min_effect:
                        continue
                    effects.append(Effect(int(k), 2, "SUPPLIES", f"{rule.name}/supply_chain_hop2",
                                          (src, int(j), int(k)), shock2))
    return effects


def path_text(path: tuple[int, ...], relation: str, rule_relation: str | None, tickers: np.ndarray) -> str:
    """Readable path, e.g. ``AAA -[SUPPLIES]-> BBB -[SUPPLIES]-> CCC`` (arrows follow supply direction)."""
    names = [str(tickers[i]) for i in path]
    if relation in ("FOCAL",):
        return names[0]
    if relation == "COUNTERPART":
        return f"{names[0]} -[NAMED_IN_NEWS]- {names[1]}"
    if rule_relation in ("customers", "suppliers"):
        arrow = "->" if rule_relation == "customers" else "<-"
        return f" -[SUPPLIES]{arrow} ".join(names) if arrow == "->" else " <-[SUPPLIES]- ".join(names)
    return f"{names[0]} -[{relation}]- {names[1]}"


def event_table(types: tuple[EventType, ...] = EVENT_TYPES) -> pd.DataFrame:
    """The catalogue as a table: type, kind, sign, size and rules (for docs and truth)."""
    rows = []
    for et in types:
        rules = "; ".join(f"{r.name} ({r.relation}{'' if r.source == 'focal' else ' of counterpart'}, x{r.mult:+.2f})" for r in et.rules)
        cp = f"{et.counterpart} x{et.counterpart_mult:+.2f}" if et.counterpart else ""
        rows.append((et.name, et.kind, et.sign, et.size, et.weight, cp, rules))
    return pd.DataFrame(rows, columns=["event_type", "kind", "sign", "size", "weight", "counterpart", "rules"])
