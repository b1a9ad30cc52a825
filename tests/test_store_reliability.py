"""The graph store under failure: partial writes, parameters, timeouts, two writers, orphans, odd paths."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from graph_fixtures import small_snapshots

from kgfin.graph import GraphSnapshot
from kgfin.store import EmbeddedServer, FalkorStore, QueryError, StoreError, clean_params

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def snaps(synth_dir: Path) -> dict[str, GraphSnapshot]:
    return small_snapshots(synth_dir, 2)


@pytest.fixture
def store_dir(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "g"
    yield d
    EmbeddedServer(d).stop()


def test_a_failed_month_leaves_no_partial_writes(store_dir: Path, snaps: dict[str, GraphSnapshot],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (m1, s1), (m2, s2) = list(snaps.items())[:2]
    with FalkorStore(store_dir) as st:
        st.write_snapshot(s1)
        before = st.counts()
        real = st._write_edges

        def failing(rel: str, *args: object, **kwargs: object) -> None:
            if rel == "CO_HELD":
                raise StoreError("a batch of 42 relationships wrote 0")
            real(rel, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(st, "_write_edges", failing)
        with pytest.raises(StoreError, match="wrote 0"):
            st.write_snapshot(s2)
        assert st.counts() == before  # nodes and relationships of m2 removed again
        assert st.months() == [m1]
        assert st._scalar("MATCH (s:Snapshot {month: $m}) RETURN count(s)", {"m": m2}) == 0


def test_integer_parameters_out_of_range_are_refused() -> None:
    with pytest.raises(QueryError, match="64-bit"):
        clean_params({"k": 99999999999999999999}, "RETURN $k")
    with pytest.raises(QueryError, match="64-bit"):
        clean_params({"k": [1, -(2**63) - 1]}, "RETURN $k")
    assert clean_params({"k": 2**63 - 1}, "RETURN $k") == {"k": 2**63 - 1}


def test_exploration_queries_push_the_limit_and_stop_at_the_timeout(store_dir: Path) -> None:
    import time

    with FalkorStore(store_dir) as st:
        st._write("UNWIND range(1, 200) AS i CREATE (:X {v: i})", {})
        start = time.perf_counter()
        frame = st.query("UNWIND range(1, 3000000) AS x RETURN x", max_rows=3)
        assert frame["x"].tolist() == [1, 2, 3] and frame.attrs["truncated"]
        assert time.perf_counter() - start < 1.0  # (materialising 3 M rows took seconds and a GB)
        assert not st.query("MATCH (n:X) RETURN n.v AS v", max_rows=500).attrs["truncated"]
        st.max_rows = 10
        assert len(st.query("MATCH (n:X) RETURN n.v AS v")) == 10
        with pytest.raises(QueryError, match="limit and was stopped"):
            st.query("MATCH (a:X), (b:X), (c:X), (d:X) RETURN count(*)", timeout=0.2)


def test_open_store_reads_the_guards_from_the_environment(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kgfin.errors import KgfinError
    from kgfin.store import open_store

    monkeypatch.setenv("KGFIN_GRAPH_QUERY_TIMEOUT", "5")
    monkeypatch.setenv("KGFIN_GRAPH_MAX_ROWS", "7")
    with open_store(store_dir, env_file=None) as st:
        assert (st.query_timeout, st.max_rows) == (5.0, 7)
    monkeypatch.setenv("KGFIN_GRAPH_MAX_ROWS", "-1")
    with pytest.raises(KgfinError, match="KGFIN_GRAPH_MAX_ROWS"):
        open_store(store_dir, env_file=None)
