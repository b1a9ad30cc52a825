"""Read-only check, parameter handling, the query library format, store selection (no server needed)."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from kgfin.errors import KgfinError
from kgfin.store import (
    FalkorStore,
    Neo4jStore,
    QueryError,
    ReadOnlyError,
    StoreError,
    check_read_only,
    clean_params,
    graph_settings,
    load_queries,
    open_store,
    parse_param,
    read_env_file,
)
from kgfin.store.falkor import params_header, rows_literal
from kgfin.store.model import parse_schema
from kgfin.store.queries import graphdb_dir, query_parameters, strip_cypher


@pytest.mark.parametrize("cypher", [
    "CREATE (n:X)",
    "match (n) detach delete n",
    "MATCH (n) SET n.x = 1",
    "MATCH (n) REMOVE n.x",
    "MERGE (n:X {a: 1})",
    "DROP INDEX ON :X(a)",
    "LOAD CSV FROM 'file:///x' AS row RETURN row",
    "UNWIND [1] AS i FOREACH (x IN [1] | CREATE (:X))",
    "MATCH (n) WITH n CALL { WITH n DELETE n } RETURN 1",
    "CALL apoc.periodic.iterate('MATCH (n) RETURN n', 'DELETE n', {})",
    "CALL db.idx.fulltext.drop('X')",
    "MATCH (n) RETURN n /* harmless */ ; CREATE (:X)",
])
def test_writes_refused(cypher: str) -> None:
    with pytest.raises(ReadOnlyError, match="refused"):
        check_read_only(cypher)


@pytest.mark.parametrize("cypher", [
    "MATCH (c:Company {name: 'CREATE DELETE'}) RETURN c",
    'MATCH (c) WHERE c.name = "x SET y" RETURN c // DELETE everything',
    "MATCH (c) RETURN c.`set` AS s, c.created AS created, c.offset AS o",
    "MATCH (c:Settlement) RETURN count(c)",
    "CALL db.labels()",
    "CALL { MATCH (n) RETURN n } RETURN count(*)",
    "MATCH (n) WHERE n.x = $remove RETURN n",
])
def test_reads_allowed(cypher: str) -> None:
    check_read_only(cypher)


def test_strip_cypher() -> None:
    assert strip_cypher("RETURN 'a // b' AS x // c") == "RETURN '' AS x "
    assert query_parameters("MATCH (n {a: $x}) WHERE n.b = '$y' RETURN $z // $w") == {"x", "z"}
    with pytest.raises(QueryError, match="unterminated"):
        strip_cypher("RETURN 'abc")


def test_clean_params() -> None:
    got = clean_params({"a": np.int64(3), "b": np.float64(0.5), "c": (1, "x"), "d": {"k": None}, "e": True})
    assert got == {"a": 3, "b": 0.5, "c": [1, "x"], "d": {"k": None}, "e": True}
    assert type(got["a"]) is int and type(got["b"]) is float
    with pytest.raises(QueryError, match="not a plain name"):
        clean_params({"a-b": 1})
    with pytest.raises(QueryError, match="finite"):
        clean_params({"a": math.nan})
    with pytest.raises(QueryError, match="dates and times"):
        clean_params({"a": date(2020, 1, 1)})
    with pytest.raises(QueryError, match="map key"):
        clean_params({"a": {"x y": 1}})
    with pytest.raises(QueryError, match="unsupported type"):
        clean_params({"a": object()})


def test_parse_param() -> None:
    assert parse_param("k=10") == ("k", 10)
    assert parse_param("x=0.5") == ("x", 0.5)
    assert parse_param("month=2015-01") == ("month", "2015-01")
    assert parse_param("day=2015-01-02") == ("day", "2015-01-02")
    assert parse_param("t=ABC") == ("t", "ABC")
    assert parse_param("l=[A, B]") == ("l", ["A", "B"])
    assert parse_param("q=x' OR 1=1 //") == ("q", "x' OR 1=1 //")
    assert parse_param("m={a: 1}") == ("m", "{a: 1}")
    with pytest.raises(QueryError, match="name=value"):
        parse_param("novalue")


def test_library_files() -> None:
    queries = load_queries()
    assert len(queries) >= 8
    for q in queries.values():
        assert q.description and not q.description.startswith("/")
        check_read_only(q.cypher)
    sup = queries["suppliers"]
    assert [p.name for p in sup.params] == ["ticker", "month", "k"]
    assert sup.bind({"ticker": "ABC", "month": "2015-01"}) == {"ticker": "ABC", "month": "2015-01", "k": 50}
    assert sup.bind({"ticker": 123, "month": "2015-01", "k": "5"})["k"] == 5
    with pytest.raises(QueryError, match="expected int"):
        sup.bind({"ticker": "A", "month": "2015-01", "k": "many"})
    with pytest.raises(QueryError, match="missing parameter ticker"):
        sup.bind({"month": "2015-01"})
    with pytest.raises(QueryError, match="unknown parameter"):
        sup.bind({"ticker": "A", "month": "2015-01", "limit": 3})


def test_bad_library_file(tmp_path: Path) -> None:
    (tmp_path / "bad.cypher").write_text("// Writes.\n// :param t str\nMATCH (c {ticker: $t}) DETACH DELETE c\n")
    with pytest.raises(ReadOnlyError):
        load_queries(tmp_path)
    (tmp_path / "bad.cypher").write_text("// Undeclared.\nMATCH (c {ticker: $t}) RETURN c\n")
    with pytest.raises(QueryError, match="declared parameters"):
        load_queries(tmp_path)
    (tmp_path / "bad.cypher").write_text("MATCH (c) RETURN c\n")
    with pytest.raises(QueryError, match="description"):
        load_queries(tmp_path)


def test_schema_file_parses() -> None:
    items = parse_schema((graphdb_dir() / "schema.cypher").read_text())
    assert {i.label for i in items if i.kind == "unique"} == {"Company", "Director", "Fund", "CPC", "Snapshot"}
    assert {i.label for i in items if i.target == "relationship"} == {
        "SUPPLIES", "SHARES_DIRECTOR", "CO_HELD", "TECH_SIMILAR", "SITS_ON", "HOLDS", "PATENTS_IN"}
    assert items[0].portable() == "CREATE INDEX FOR (x:Company) ON (x.ticker)"
    with pytest.raises(ValueError, match="unsupported statement"):
        parse_schema("CREATE INDEX FOR (c:Company) ON (c.ticker);")


def test_falkor_parameter_text() -> None:
    assert params_header({"a": 'x"y\\z', "b": [1, 2.5, None, True]}) == 'CYPHER `a`="x\\"y\\\\z" `b`=[1,2.5,null,true] '
    import pandas as pd

    frame = pd.DataFrame({"a": ["p", 'q"'], "w": [0.1, 2.0], "n": [1, 2]})
    assert rows_literal(frame) == '[{`a`:"p",`w`:0.1,`n`:1},{`a`:"q\\"",`w`:2.0,`n`:2}]'
    with pytest.raises(QueryError, match="NaN"):
        rows_literal(frame.assign(w=[0.1, float("nan")]))


def test_env_file_and_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / ".env"
    env.write_text("# comment\nexport KGFIN_GRAPH_URI=bolt://db:7687\nKGFIN_GRAPH_USER='neo4j'\n"
                   'KGFIN_GRAPH_PASSWORD="s3cret # not a comment"\nKGFIN_GRAPH_DATABASE=kg  # comment\n')
    assert read_env_file(env) == {"KGFIN_GRAPH_URI": "bolt://db:7687", "KGFIN_GRAPH_USER": "neo4j",
                                  "KGFIN_GRAPH_PASSWORD": "s3cret # not a comment", "KGFIN_GRAPH_DATABASE": "kg"}
    for key in ("KGFIN_GRAPH_URI", "KGFIN_GRAPH_USER", "KGFIN_GRAPH_PASSWORD", "KGFIN_GRAPH_DATABASE",
                "KGFIN_GRAPH_BATCH_SIZE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("KGFIN_GRAPH_USER", "admin")
    s = graph_settings(env)
    assert s["KGFIN_GRAPH_URI"] == "bolt://db:7687" and s["KGFIN_GRAPH_USER"] == "admin"
    assert read_env_file(tmp_path / "missing") == {}
    env.write_text("NOEQUALS\n")
    with pytest.raises(KgfinError, match=r"\.env:1"):
        read_env_file(env)


def test_open_store_chooses_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KGFIN_GRAPH_URI", raising=False)
    calls = {}
    monkeypatch.setattr(Neo4jStore, "__init__", lambda self, uri, user, password, **kw: calls.update(
        neo4j=(uri, user, password, kw)))
    monkeypatch.setattr(FalkorStore, "__init__", lambda self, data_dir=None, **kw: calls.update(falkor=(data_dir, kw)))
    env = tmp_path / ".env"
    env.write_text("KGFIN_GRAPH_URI=bolt://h:7687\nKGFIN_GRAPH_USER=neo4j\nKGFIN_GRAPH_PASSWORD=pw\n"
                   "KGFIN_GRAPH_BATCH_SIZE=30\n")
    assert isinstance(open_store(env_file=env), Neo4jStore)
    assert calls["neo4j"] == ("bolt://h:7687", "neo4j", "pw", {"database": None, "batch_size": 30})
    assert isinstance(open_store(tmp_path / "g", env_file=None), FalkorStore)
    assert calls["falkor"][0] == tmp_path / "g"
    assert isinstance(open_store("redis://localhost:6379", env_file=None), FalkorStore)
    assert calls["falkor"] == (None, {"url": "redis://localhost:6379"})
    assert isinstance(open_store(env_file=None), FalkorStore)
    assert str(calls["falkor"][0]) == ".kgfin/graph"
    with pytest.raises(StoreError, match="unsupported graph store URI"):
        open_store("http://x", env_file=None)


def test_neo4j_unreachable_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot connect to Neo4j"):
        Neo4jStore("bolt://127.0.0.1:1", connect_timeout=0.5, connect_retries=2)
    with pytest.raises(StoreError, match="without a password"):
        Neo4jStore("bolt://127.0.0.1:1", user="neo4j")
