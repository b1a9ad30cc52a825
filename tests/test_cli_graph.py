"""`kgfin graph ...`: build, stats, query (named, --cypher, refusal), export, serve/status/stop."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import networkx as nx
import pandas as pd
import pytest
from typer.testing import CliRunner

from kgfin.cli import app
from kgfin.data import load_market
from kgfin.graph import data_months
from kgfin.runinfo import read_manifest
from kgfin.store import EmbeddedServer, ReadOnlyError

pytestmark = pytest.mark.integration
runner = CliRunner()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, synth_dir: Path) -> Iterator[tuple[Path, list[str]]]:
    store = tmp_path_factory.mktemp("cli") / "graph"
    months = data_months(load_market(synth_dir))[1:3]
    try:
        result = runner.invoke(app, ["graph", "build", str(synth_dir), "--store", str(store),
                                     "--month", f"{months[0]}..{months[1]}"])
        assert result.exit_code == 0, result.output
        assert months[0] in result.output and months[1] in result.output
        assert not EmbeddedServer(store).status().running  # build stopped the server it started
        manifest = read_manifest(store)
        assert manifest["command"] == "kgfin graph build" and manifest["months"] == months
        assert manifest["config"]["tech_top_k"] == 10
        yield store, months
    finally:
        EmbeddedServer(store).stop()


def test_stats(built: tuple[Path, list[str]]) -> None:
    store, months = built
    result = runner.invoke(app, ["graph", "stats", "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert all(m in result.output for m in months) and "3+ types" in result.output


def test_named_query_and_csv(built: tuple[Path, list[str]], tmp_path: Path) -> None:
    store, months = built
    out = tmp_path / "top.csv"
    result = runner.invoke(app, ["graph", "query", "most_connected", "--store", str(store), "--param",
                                 f"month={months[0]}", "-p", "k=3", "--csv", str(out)])
    assert result.exit_code == 0, result.output
    top = pd.read_csv(out)
    assert list(top.columns) == ["firm", "name", "neighbours", "relationships"] and len(top) == 3
    assert top["firm"].iloc[0] in result.output
    listed = runner.invoke(app, ["graph", "query", "--list"])
    assert "ripple_2hop" in listed.output and "directors_linking" in listed.output


def test_cypher_query_with_parameters(built: tuple[Path, list[str]], tmp_path: Path) -> None:
    store, months = built
    result = runner.invoke(app, ["graph", "query", "--store", str(store), "--cypher",
                                 "MATCH (a:Company)-[r:SUPPLIES]->(b:Company) WHERE r.month = $m "
                                 "RETURN count(r) AS n", "--param", f"m={months[0]}"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["graph", "query", "--store", str(store), "--cypher",
                                 "MATCH (c:Company {ticker: $t}) RETURN c.name AS name",
                                 "--param", "t=X' OR 1=1 //", "--csv", str(tmp_path / "none.csv")])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "none.csv").empty  # the parameter is a value: no company has that ticker


def test_write_refused(built: tuple[Path, list[str]]) -> None:
    store, _ = built
    result = runner.invoke(app, ["graph", "query", "--store", str(store), "--cypher", "MATCH (c) DETACH DELETE c"])
    assert isinstance(result.exception, ReadOnlyError)
    # through the console script: one clear line, exit status 2
    proc = subprocess.run([sys.executable, "-m", "kgfin.cli", "graph", "query", "--store", str(store),
                           "--cypher", "CREATE (:Company {ticker: 'X'})"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "refused" in proc.stderr and "read-only" in proc.stderr and "Traceback" not in proc.stderr


def test_export(built: tuple[Path, list[str]], tmp_path: Path) -> None:
    store, months = built
    out = tmp_path / "g.graphml"
    result = runner.invoke(app, ["graph", "export", "--month", months[1], "--format", "graphml", "--out", str(out),
                                 "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert nx.read_graphml(out).number_of_nodes() > 40
    result = runner.invoke(app, ["graph", "export", "--month", months[1], "--out", str(tmp_path / "pq"),
                                 "--store", str(store)])
    assert result.exit_code == 0 and (tmp_path / "pq" / "edges.parquet").exists()


def test_serve_status_stop(tmp_path: Path) -> None:
    store = tmp_path / "served"
    try:
        assert "stopped" in runner.invoke(app, ["graph", "status", "--store", str(store)]).output
        assert "started" in runner.invoke(app, ["graph", "serve", "--store", str(store)]).output
        assert EmbeddedServer(store).status().running
        assert "already running" in runner.invoke(app, ["graph", "serve", "--store", str(store)]).output
        assert "running" in runner.invoke(app, ["graph", "status", "--store", str(store)]).output
        assert "stopped" in runner.invoke(app, ["graph", "stop", "--store", str(store)]).output
        assert not EmbeddedServer(store).status().running
    finally:
        EmbeddedServer(store).stop()
    result = runner.invoke(app, ["graph", "serve", "--store", "bolt://localhost:7687"])
    assert "not an embedded store" in str(result.exception)


def test_help_stays_light() -> None:
    code = ("import sys, kgfin.cli; heavy = ('kgfin.store', 'kgfin.graph', 'falkordb', 'neo4j', 'torch', "
            "'networkx', 'scipy', 'pandas'); print([m for m in heavy if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
