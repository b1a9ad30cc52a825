"""The synthetic universe: sectors, sub-industries, companies and their fixed traits.

Each company gets a sector and sub-industry, a readable name and ticker, a starting
market capitalisation, factor exposures, an idiosyncratic volatility, a patenting
intensity and a latent CPC profile (its true technology mix). Companies in the same
sub-industry share most of their CPC mix, so technical similarity says more than the
sector label does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["CPC_GROUPS", "SECTORS", "Sector", "Universe", "make_universe"]


@dataclass(frozen=True)
class Sector:
    name: str
    ff_industry: str  # Fama-French 12-industry portfolio that drives its industry factor
    beta: float  # mean market beta
    hml: float  # mean value loading
    patent_rate: float  # relative patenting intensity
    subindustries: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]  # (name, CPC groups, name nouns)


SECTORS: tuple[Sector, ...] = (
    Sector("Information Technology", "BusEq", 1.25, -0.3, 3.0, (
        ("Semiconductors", ("H01L21", "H01L23", "H01L29", "G11C16", "H03K17"), ("Semiconductor", "Micro", "Silicon")),
        ("Software", ("G06F16", "G06F21", "G06N3", "G06F9", "H04L67"), ("Software", "Systems", "Analytics")),
        ("Hardware", ("G06F1", "H05K7", "G06F3", "H01M10", "G11B5"), ("Devices", "Computing", "Electronics")),
    )),
    Sector("Health Care", "Hlth", 0.85, -0.2, 2.2, (
        ("Pharmaceuticals", ("A61K31", "A61P35", "C07D401", "A61P25", "C07K16"), ("Pharmaceuticals", "Therapeutics", "Pharma")),
        ("Medical Devices", ("A61B5", "A61B17", "A61M5", "A61F2", "A61N1"), ("Medical", "Surgical", "Diagnostics")),
        ("Biotechnology", ("C12N15", "C07K14", "A61K39", "C12Q1", "A61K48"), ("Biosciences", "Genomics", "Bio")),
    )),
    Sector("Financials", "Money", 1.10, 0.5, 0.1, (
        ("Banks", ("G06Q40", "G06Q20", "H04L9"), ("Bancorp", "Bank", "Financial")),
        ("Insurance", ("G06Q40", "G06Q50", "G06N20"), ("Insurance", "Assurance", "Mutual")),
    )),
    Sector("Energy", "Enrgy", 1.05, 0.6, 0.6, (
        ("Oil & Gas", ("E21B43", "E21B47", "C10G1", "F17C1", "E21B33"), ("Energy", "Petroleum", "Resources")),
        ("Renewables", ("H02S40", "F03D1", "F03D7", "H01L31", "H02J3"), ("Solar", "Renewables", "Power")),
    )),
    Sector("Materials", "Chems", 1.05, 0.3, 1.0, (
        ("Chemicals", ("C08L23", "C08G18", "C09D7", "C07C7", "B01J23"), ("Chemicals", "Polymers", "Chemical")),
        ("Metals & Mining", ("C22C38", "C22B3", "B22F3", "C21D8", "B21B1"), ("Metals", "Mining", "Steel")),
    )),
    Sector("Industrials", "Manuf", 1.10, 0.2, 1.5, (
        ("Aerospace", ("B64C1", "B64D11", "F02C7", "B64G1", "G01S13"), ("Aerospace", "Aviation", "Defense")),
        ("Machinery", ("F16H57", "B23K26", "G05B19", "B25J9", "F16C33"), ("Machinery", "Industries", "Engineering")),
        ("Transportation", ("B60W30", "B61L27", "G08G1", "B62D21", "B60L53"), ("Logistics", "Transport", "Motors")),
    )),
    Sector("Consumer Discretionary", "Shops", 1.15, 0.0, 0.8, (
        ("Automobiles", ("B60W30", "B62D21", "B60L53", "F02D41", "B60K6"), ("Automotive", "Motor", "Auto")),
        ("Retail & Apparel", ("A43B13", "D06F39", "G06Q30", "A47C7", "A41D13"), ("Retail", "Apparel", "Stores")),
    )),
    Sector("Consumer Staples", "NoDur", 0.65, 0.1, 0.4, (
        ("Food & Beverage", ("A23L2", "A23G1", "C12C12", "A23L33", "B65D85"), ("Foods", "Beverages", "Brands")),
        ("Household Products", ("C11D3", "A61Q19", "B65D83", "C11D11", "A24F40"), ("Household", "Consumer", "Home")),
    )),
    Sector("Communication Services", "Telcm", 0.95, -0.1, 0.8, (
        ("Telecom", ("H04W72", "H04W4", "H04B7", "H04L5", "H04W88"), ("Telecom", "Communications", "Wireless")),
        ("Media", ("H04N21", "G06Q30", "A63F13", "H04N19", "G06F16"), ("Media", "Entertainment", "Interactive")),
    )),
    Sector("Utilities", "Utils", 0.55, 0.4, 0.2, (
        ("Electric Utilities", ("H02J3", "Y02E10", "G01R22", "H02J13", "H01M10"), ("Utilities", "Electric", "Grid")),
        ("Water & Gas", ("E03B7", "F17D1", "G01F15", "C02F1"), ("Water", "Gas", "Utility")),
    )),
)

CPC_GROUPS: tuple[str, ...] = tuple(sorted({g for s in SECTORS for _, groups, _ in s.subindustries for g in groups}))

# Which sectors supply which (rows: supplier sector, columns: customer sector), in SECTORS order.
SUPPLY_AFFINITY = np.array([
    # IT  HC  Fin En  Mat Ind CD  CS  Com Util
    [3.0, 1.0, 1.5, 0.3, 0.3, 1.5, 1.5, 0.3, 2.0, 0.5],  # IT
    [0.1, 2.5, 0.1, 0.0, 0.1, 0.1, 0.1, 0.3, 0.0, 0.0],  # Health Care
    [0.3, 0.3, 0.5, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3],  # Financials
    [0.2, 0.2, 0.0, 1.0, 1.5, 1.0, 0.5, 0.3, 0.1, 2.5],  # Energy
    [1.5, 1.0, 0.0, 0.5, 1.5, 2.5, 1.5, 1.5, 0.1, 0.3],  # Materials
    [1.0, 0.5, 0.1, 1.5, 0.8, 2.0, 1.5, 0.5, 0.5, 1.5],  # Industrials
    [0.1, 0.1, 0.1, 0.0, 0.0, 0.1, 1.0, 0.3, 0.3, 0.0],  # Consumer Discretionary
    [0.0, 0.3, 0.0, 0.0, 0.0, 0.0, 1.5, 1.0, 0.0, 0.0],  # Consumer Staples
    [1.0, 0.5, 1.0, 0.3, 0.3, 0.5, 1.0, 0.5, 1.0, 0.3],  # Communication Services
    [0.8, 0.5, 0.3, 0.5, 1.5, 1.5, 0.5, 0.5, 0.5, 0.3],  # Utilities
])

_STEM_A = (
    "North", "Blue", "Silver", "Iron", "Red", "Green", "Black", "White", "Grand", "High", "Clear", "Bright",
    "Stone", "Oak", "Pine", "Cedar", "Maple", "River", "Lake", "Sun", "Star", "Moon", "Sky", "Cloud",
    "Eagle", "Falcon", "Hawk", "Wolf", "Fox", "Bear", "Lion", "Crest", "Summit", "Harbor", "Bay", "Golden",
    "Prime", "Noble", "Royal", "Swift", "True", "Bold", "Keystone", "Granite", "Copper", "Cobalt", "Amber",
    "Crown", "Delta", "Apex", "Vertex", "Orbit", "Nova", "Terra", "Astra", "Vista", "Zenith", "Atlas",
)
_STEM_B = (
    "wind", "field", "brook", "gate", "ridge", "point", "stone", "water", "wood", "view", "haven", "port",
    "bridge", "line", "crest", "vale", "mont", "ford", "shore", "peak", "land", "mark", "wave", "light",
    "path", "core", "works", "hill", "rock", "spring", "dale", "ton", "bury", "stead", "well", "more",
)


@dataclass
class Universe:
    """Fixed traits of every company; arrays are indexed by company position."""

    companies: pd.DataFrame  # ticker, name, sector
    sector_idx: np.ndarray  # (N,)
    sub_idx: np.ndarray  # (N,) global sub-industry index
    sub_names: list[str]
    log_cap0: np.ndarray  # (N,) log market cap at the start (USD)
    exposures: pd.DataFrame  # (N, [mkt_rf, smb, hml, rmw, cma, industry])
    idio_vol_rel: np.ndarray  # (N,) idiosyncratic volatility relative to the median (about 1)
    patent_rate: np.ndarray  # (N,) mean grants per month
    cpc_profile: np.ndarray  # (N, G) latent CPC mix, rows sum to 1

    @property
    def n(self) -> int:
        return len(self.companies)

    @property
    def tickers(self) -> np.ndarray:
        return self.companies["ticker"].to_numpy()

    def size_z(self, log_cap: np.ndarray | None = None) -> np.ndarray:
        """Standardised log market cap."""
        x = self.log_cap0 if log_cap is None else log_cap
        return (x - x.mean()) / (x.std() + 1e-12)


def _names_and_tickers(rng: np.random.Generator, nouns: list[tuple[str, ...]]) -> tuple[list[str], list[str]]:
    """Unique readable names ("Northwind Semiconductor") and 3-4 letter tickers (deterministic)."""
    names: list[str] = []
    tickers: list[str] = []
    used_names: set[str] = set()
    used_tickers: set[str] = set()
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    for noun_choices in nouns:
        while True:
            a = _STEM_A[rng.integers(len(_STEM_A))]
            b = _STEM_B[rng.integers(len(_STEM_B))]
            noun = noun_choices[rng.integers(len(noun_choices))]
            name = f"{a}{b} {noun}"
            if name not in used_names:
                break
        used_names.add(name)
        a_up, b_up, n_up = a.upper(), b.upper(), noun.upper()
        candidates = [a_up[0] + b_up[0] + n_up[0], a_up[:2] + n_up[0], a_up[0] + b_up[:2],
                      a_up[:2] + b_up[0] + n_up[0], a_up[:3] + n_up[0], a_up[0] + b_up[0] + n_up[:2],
                      a_up[:2] + b_up[:2]]
        ticker = next((c for c in candidates if c not in used_tickers), None)
        while ticker is None or ticker in used_tickers:
            ticker = a_up[0] + "".join(rng.choice(letters, size=3))
        used_tickers.add(ticker)
        names.append(name)
        tickers.append(ticker)
    return names, tickers


def make_universe(n: int, rng: np.random.Generator) -> Universe:
    """Draw ``n`` companies across the ten sectors."""
    sector_weights = np.array([0.16, 0.13, 0.12, 0.07, 0.07, 0.13, 0.11, 0.07, 0.08, 0.06])
    # Every sector gets at least two companies; the rest are drawn by weight.
    base = np.repeat(np.arange(len(SECTORS)), 2)
    sector_idx = rng.permutation(np.concatenate([base, rng.choice(len(SECTORS), size=n - base.size, p=sector_weights)]))
    sub_offsets = np.cumsum([0] + [len(s.subindustries) for s in SECTORS])
    sub_names = [sub for s in SECTORS for sub, _, _ in s.subindustries]
    sub_local = np.array([rng.integers(len(SECTORS[s].subindustries)) for s in sector_idx])
    sub_idx = sub_offsets[sector_idx] + sub_local
    nouns = [SECTORS[s].subindustries[k][2] for s, k in zip(sector_idx, sub_local, strict=True)]
    names, tickers = _names_and_tickers(rng, nouns)

    log_cap0 = rng.normal(np.log(4e9), 1.4, size=n)  # median about USD 4 bn
    size_z = (log_cap0 - log_cap0.mean()) / log_cap0.std()
    sec_beta = np.array([SECTORS[s].beta for s in sector_idx])
    sec_hml = np.array([SECTORS[s].hml for s in sector_idx])
    exposures = pd.DataFrame({
        "mkt_rf": np.clip(rng.normal(sec_beta, 0.2), 0.2, 2.2),
        "smb": rng.normal(-0.35 * size_z + 0.2, 0.2),
        "hml": rng.normal(sec_hml, 0.25),
        "rmw": rng.normal(0.1, 0.25, size=n),
        "cma": rng.normal(0.0, 0.25, size=n),
        "industry": np.clip(rng.normal(1.0, 0.25, size=n), 0.2, 2.0),
    })
    idio_vol_rel = np.exp(rng.normal(0.0, 0.2, size=n) - 0.15 * size_z)

    rate = np.array([SECTORS[s].patent_rate for s in sector_idx]) * np.exp(0.4 * size_z)
    rate = rate / rate.mean()

    # Latent CPC mix: mostly the sub-industry's groups, some sector-wide, a little anything.
    g_index = {g: i for i, g in enumerate(CPC_GROUPS)}
    profiles = np.zeros((n, len(CPC_GROUPS)))
    for i in range(n):
        sector = SECTORS[sector_idx[i]]
        own = [g_index[g] for g in sector.subindustries[sub_local[i]][1]]
        sector_groups = sorted({g_index[g] for _, gs, _ in sector.subindustries for g in gs})
        p = np.zeros(len(CPC_GROUPS))
        p[own] += 0.75 * rng.dirichlet(np.full(len(own), 2.0))
        p[sector_groups] += 0.20 * rng.dirichlet(np.full(len(sector_groups), 1.0))
        p += 0.05 * rng.dirichlet(np.full(len(CPC_GROUPS), 0.2))
        profiles[i] = p / p.sum()

    companies = pd.DataFrame({
        "ticker": tickers,
        "name": names,
        "sector": [SECTORS[s].name for s in sector_idx],
    })
    return Universe(companies, sector_idx, sub_idx, sub_names, log_cap0, exposures,
                    idio_vol_rel, rate, profiles)
