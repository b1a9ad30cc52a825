"""The graph store under failure: partial writes, parameters, timeouts, two writers, orphans, odd paths."""

from __future__ import annotations

import os
import subprocess
import sys
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


_HOLDER = """
import sys, time
from kgfin.store import FalkorStore
st = FalkorStore(sys.argv[1])
if sys.argv[2] == "write":
    st._acquire_writer()
print("ready", flush=True)
sys.stdin.readline()
st.close()
print("closed", flush=True)
"""


def _holder(store_dir: Path, mode: str) -> subprocess.Popen[str]:
    """Another process holding the store open (``mode`` 'write': with the writer lock) until its stdin gets a line."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(store_dir), mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def _finish(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "closed"
    proc.wait(timeout=30)


def test_a_second_writer_gets_store_busy(store_dir: Path, snaps: dict[str, GraphSnapshot]) -> None:
    other = _holder(store_dir, "write")
    try:
        with FalkorStore(store_dir) as st:
            assert st.months() == []  # reading is fine
            with pytest.raises(StoreError, match=rf"store busy: .* being written by PID {other.pid}"):
                st.write_snapshot(next(iter(snaps.values())))
    finally:
        _finish(other)
    with FalkorStore(store_dir) as st:  # free again
        st.write_snapshot(next(iter(snaps.values())))


def test_a_server_another_process_uses_is_never_stopped(store_dir: Path) -> None:
    server = EmbeddedServer(store_dir)
    other = _holder(store_dir, "read")  # the other process starts the server
    try:
        with FalkorStore(store_dir) as st:
            assert st.months() == []
        assert server.status().state == "running"  # our close left it to the other user
        with pytest.raises(StoreError, match="in use"):
            server.stop()
    finally:
        _finish(other)
    assert server.status().state == "stopped"  # its last user stopped it
    st = FalkorStore(store_dir)  # now we start it, the other process joins and leaves
    other = _holder(store_dir, "read")
    st.close()
    assert server.status().state == "running"
    _finish(other)
    assert server.status().state == "stopped"


def test_orphan_servers_are_listed_and_adopted(store_dir: Path) -> None:
    other = _holder(store_dir, "read")
    other.kill()  # kill -9: no close, no atexit
    other.wait()
    server = EmbeddedServer(store_dir)
    st = server.status()
    assert st.state == "orphan" and st.running
    assert store_dir.resolve() in [o.data_dir for o in EmbeddedServer.orphans()]
    with FalkorStore(store_dir) as store:
        assert server.status().state == "running"
        assert store.months() == []
    assert server.status().state == "stopped"  # the adopter was its last user


def test_reading_refuses_a_store_that_does_not_exist(tmp_path: Path) -> None:
    from kgfin.store import open_store

    with pytest.raises(StoreError, match="no graph store at"):
        open_store(tmp_path / "typo", create=False, env_file=None)
    assert not (tmp_path / "typo").exists()
    (tmp_path / "file").write_text("x")
    for create in (True, False):
        with pytest.raises(StoreError, match="is a file, not a graph store directory"):
            open_store(tmp_path / "file", create=create, env_file=None)


def test_cli_status_lists_orphans_and_reading_commands_refuse_a_missing_store(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from kgfin.cli import app

    runner = CliRunner()
    d = tmp_path / "g"
    other = _holder(d, "read")
    other.kill()
    other.wait()
    try:
        out = runner.invoke(app, ["graph", "status", "--store", str(tmp_path / "elsewhere")]).output
        assert "orphan: FalkorDB pid" in out and str(d.resolve()) in out
    finally:
        EmbeddedServer(d).stop()
    for args in (["graph", "stats"], ["graph", "query", "most_connected", "-p", "month=2014-01"],
                 ["graph", "export", "--month", "2014-01"]):
        result = runner.invoke(app, [*args, "--store", str(tmp_path / "typo")])
        assert "no graph store at" in str(result.exception), args
    assert not (tmp_path / "typo").exists()


def test_ctrl_c_says_how_to_resume(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import kgfin.cli as cli

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "app", interrupted)
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 130 and "interrupted: re-run the same command to resume" in capsys.readouterr().err


def test_incomplete_and_absent_months_are_errors_not_empty_answers(store_dir: Path,
                                                                  snaps: dict[str, GraphSnapshot]) -> None:
    from typer.testing import CliRunner

    from kgfin.cli import app
    from kgfin.store import model as m

    (m1, s1), (m2, _) = list(snaps.items())[:2]
    with FalkorStore(store_dir) as st:
        st.write_snapshot(s1)
        st._write(m.SNAPSHOT_BEGIN, {"month": m2})  # what a killed build leaves
        assert st.incomplete_months() == [m2]
        with pytest.raises(StoreError, match=f"month {m2} is incomplete"):
            st.run_query("most_connected", {"month": m2})
        with pytest.raises(StoreError, match=rf"month 2001-01 is not in the store .*it holds {m1}\.\.{m1}"):
            st.run_query("most_connected", {"month": "2001-01"})
        with pytest.raises(StoreError, match="not in the store"):
            st.query("MATCH (c:Company) WHERE $month <> '' RETURN c.ticker", {"month": "2001-01"})
        with pytest.raises(StoreError, match="incomplete"):
            st.stats([m2])
        assert len(st.run_query("most_connected", {"month": m1})) > 0
    runner = CliRunner()
    result = runner.invoke(app, ["graph", "stats", "--store", str(store_dir)])
    assert result.exit_code == 1 and f"month {m2} is incomplete" in result.output and m1 in result.output
    result = runner.invoke(app, ["graph", "query", "most_connected", "-p", "month=2001-01", "--store", str(store_dir)])
    assert result.exit_code != 0 and "not in the store" in str(result.exception)


def test_a_read_only_store_is_readable_and_left_untouched(store_dir: Path, snaps: dict[str, GraphSnapshot],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import kgfin.store.falkor as falkor

    month, snap = next(iter(snaps.items()))
    with FalkorStore(store_dir) as st:
        st.write_snapshot(snap)
    before = {p.name: p.stat().st_mtime_ns for p in store_dir.iterdir()}
    data_dir = store_dir.resolve()
    monkeypatch.setattr(falkor, "_writable", lambda path: path != data_dir)  # as on a read-only file system
    try:
        with FalkorStore(store_dir, create=False) as st:
            assert st.months() == [month]
            assert st.read_snapshot(month).differences(snap) == []
            with pytest.raises(StoreError, match="read-only"):
                st.write_snapshot(snap)
        assert EmbeddedServer(store_dir).status().state == "stopped"
    finally:
        EmbeddedServer(store_dir).stop(force=True)
    assert {p.name: p.stat().st_mtime_ns for p in store_dir.iterdir()} == before  # nothing created or written


def _mount_read_only(path: Path) -> bool:
    """Bind-mount ``path`` read-only onto itself (root only); False where that is not permitted."""
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True)
    if done.returncode != 0:
        return False
    if subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["umount", str(path)], capture_output=True)
        return False
    return True


def test_a_store_on_a_real_read_only_file_system_is_readable(store_dir: Path, snaps: dict[str, GraphSnapshot]) -> None:
    """The simulation above, on a real read-only bind mount (needs root and mount; skipped elsewhere)."""
    from typer.testing import CliRunner

    from kgfin.cli import app

    month, snap = next(iter(snaps.items()))
    with FalkorStore(store_dir) as st:
        st.write_snapshot(snap)
    before = {p.name: p.stat().st_mtime_ns for p in store_dir.iterdir()}
    if not _mount_read_only(store_dir):
        pytest.skip("cannot bind-mount a directory read-only here (needs root and mount)")
    try:
        with pytest.raises(OSError, match="Read-only file system"):
            (store_dir / "probe").touch()
        with FalkorStore(store_dir, create=False) as st:
            assert st.server is not None and st.server.read_only
            assert st.months() == [month]
            assert st.read_snapshot(month).differences(snap) == []
            with pytest.raises(StoreError, match="read-only"):
                st.write_snapshot(snap)
        result = CliRunner().invoke(app, ["graph", "stats", "--store", str(store_dir)])
        assert result.exit_code == 0 and month in result.output, result.output
        result = CliRunner().invoke(app, ["graph", "query", "most_connected", "-p", f"month={month}",
                                          "--store", str(store_dir)])
        assert result.exit_code == 0, result.output
        assert EmbeddedServer(store_dir).status().state == "stopped"
    finally:
        EmbeddedServer(store_dir).stop(force=True)
        subprocess.run(["umount", str(store_dir)], check=True)
    assert {p.name: p.stat().st_mtime_ns for p in store_dir.iterdir()} == before


def test_cli_names_the_default_store_and_the_store_used(store_dir: Path, snaps: dict[str, GraphSnapshot]) -> None:
    from typer.testing import CliRunner

    from kgfin.cli import app

    runner = CliRunner()
    help_text = " ".join(runner.invoke(app, ["graph", "stats", "--help"]).output.split())
    assert "current directory" in help_text and "prints the store it used" in help_text
    month, snap = next(iter(snaps.items()))
    with FalkorStore(store_dir) as st:
        st.write_snapshot(snap)
    where = str(store_dir.resolve())
    for args in (["graph", "query", "most_connected", "-p", f"month={month}"],
                 ["graph", "export", "--month", month, "--out", str(store_dir.parent / "x")],
                 ["graph", "stats"]):
        result = runner.invoke(app, [*args, "--store", str(store_dir)])
        assert result.exit_code == 0 and where in "".join(result.output.split()), (args, result.output)
