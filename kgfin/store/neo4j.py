"""Neo4j backend: the official ``neo4j`` driver over Bolt.

Writes go in UNWIND batches (``batch_size`` rows) inside managed write transactions; reads
run in managed read transactions (a Neo4j server then refuses writes as well). Schema DDL
is Neo4j 5's (``graphdb/schema.cypher``); a Bolt server that rejects it (such as FalkorDB's
Bolt endpoint, used in tests) gets the portable ``CREATE INDEX FOR ... ON ...`` form.
Connection set-up uses short timeouts and retries: a first handshake can hang.

One writer at a time: the first write of a store object claims the store's writer lock, a
``KgfinWriterLock`` node holding the writer's host, PID, command and a lease (``writer_lease``
seconds, renewed while it writes); a second writer gets "store busy: ... being written by PID
... on HOST". The claim takes the node's write lock first (``SET``), so two claims are
serialised and the second reads the first's committed owner (Neo4j's documented remedy for lost
updates). A writer that dies without closing holds the store until its lease runs out.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
import uuid
from typing import Any

from kgfin.store.base import GraphStore, StoreError
from kgfin.store.model import parse_schema
from kgfin.store.queries import QueryError, graphdb_dir

__all__ = ["WRITER_LEASE_S", "Neo4jStore"]

log = logging.getLogger(__name__)

WRITER_LEASE_S = 300.0  # how long a Neo4j writer's claim lasts without a write renewing it

# Claim (or renew) the writer lock. SET first takes the node's write lock, so a concurrent claim waits for this
# transaction and then reads its committed owner.
_CLAIM = ("MERGE (l:KgfinWriterLock {name: 'writer'}) SET l.claim = $me "
          "WITH l, (l.owner IS NULL OR l.owner = $me OR l.expires < $now) AS free "
          "SET l.owner = CASE WHEN free THEN $me ELSE l.owner END, "
          "l.who = CASE WHEN free THEN $who ELSE l.who END, "
          "l.expires = CASE WHEN free THEN $expires ELSE l.expires END "
          "RETURN free, l.who, l.expires")
_RELEASE = "MATCH (l:KgfinWriterLock {name: 'writer'}) WHERE l.owner = $me DELETE l"
_LOCK_CONSTRAINT = ("CREATE CONSTRAINT kgfin_writer_lock IF NOT EXISTS FOR (l:KgfinWriterLock) "
                    "REQUIRE l.name IS UNIQUE")


def _plain(value: Any) -> Any:
    """Driver values as plain Python: nodes and relationships become dicts of their properties."""
    from neo4j.graph import Node, Path, Relationship

    if isinstance(value, Node):
        return {"_labels": sorted(value.labels), **dict(value)}
    if isinstance(value, Relationship):
        return {"_type": value.type, **dict(value)}
    if isinstance(value, Path):
        return [_plain(n) for n in value.nodes]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "iso_format"):  # neo4j.time values
        return value.iso_format()
    return value


class Neo4jStore(GraphStore):
    """Graph store on a Neo4j server (``bolt://`` or ``neo4j://`` URI)."""

    backend = "neo4j"

    def __init__(
        self,
        uri: str,
        user: str | None = None,
        password: str | None = None,
        *,
        database: str | None = None,
        batch_size: int = 5_000,
        connect_timeout: float = 5.0,
        connect_retries: int = 4,
        writer_lease: float = WRITER_LEASE_S,
    ):
        """Connect (retrying ``connect_retries`` times); no ``user`` means no authentication. ``writer_lease``:
        seconds a writer's claim on the store lasts without a write renewing it (module doc)."""
        super().__init__()
        if batch_size < 1:
            raise StoreError(f"batch_size must be at least 1, got {batch_size}")
        if user is not None and password is None:
            raise StoreError(f"Neo4j user {user!r} given without a password (set KGFIN_GRAPH_PASSWORD)")
        self.uri, self.user, self.database, self.batch_size = uri, user, database, batch_size
        self._auth = (user, password) if user is not None else None
        self._timeout, self._retries = connect_timeout, connect_retries
        self._driver = self._connect()
        self._closed = False
        self._lease = writer_lease
        self._me = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._claimed_at: float | None = None  # monotonic time of the last claim, None: not the writer

    def describe(self) -> str:
        return f"neo4j:{self.uri}" + (f" (database {self.database})" if self.database else "")

    def _connect(self) -> Any:
        import neo4j
        from neo4j.exceptions import (
            AuthError,
            ConfigurationError,
            ServiceUnavailable,
            SessionExpired,
        )

        last: Exception | None = None
        for attempt in range(1, self._retries + 1):
            try:
                driver = neo4j.GraphDatabase.driver(
                    self.uri, auth=self._auth, connection_timeout=self._timeout,
                    connection_acquisition_timeout=self._timeout, max_transaction_retry_time=5 * self._timeout)
            except (ConfigurationError, ValueError) as exc:
                raise StoreError(f"bad Neo4j URI {self.uri!r}: {exc}") from None
            try:
                driver.verify_connectivity()
                return driver
            except AuthError:
                driver.close()
                raise StoreError(f"Neo4j at {self.uri} refused user {self.user!r}: check KGFIN_GRAPH_USER and "
                                 "KGFIN_GRAPH_PASSWORD") from None
            except (ServiceUnavailable, SessionExpired, OSError) as exc:
                driver.close()
                last = exc
                log.info("connecting to %s failed (attempt %d/%d): %s", self.uri, attempt, self._retries, exc)
                time.sleep(min(0.2 * attempt, 1.0))
        raise StoreError(f"cannot connect to Neo4j at {self.uri} after {self._retries} attempts: {last}")

    def _run(self, cypher: str, params: dict[str, Any], write: bool,
             timeout: float | None = None) -> tuple[list[str], list[list[Any]]]:
        import neo4j
        from neo4j.exceptions import DriverError, Neo4jError, ServiceUnavailable, SessionExpired

        if self._closed:
            raise StoreError(f"{self.describe()} is closed")

        def work(tx: Any) -> tuple[list[str], list[list[Any]]]:
            result = tx.run(cypher, params)
            keys = list(result.keys())
            return keys, [[_plain(v) for v in record.values()] for record in result]

        if timeout is not None:  # the server ends the transaction after this long
            work = neo4j.unit_of_work(timeout=timeout)(work)
        mode = neo4j.WRITE_ACCESS if write else neo4j.READ_ACCESS
        try:
            with self._driver.session(database=self.database, default_access_mode=mode) as session:
                return session.execute_write(work) if write else session.execute_read(work)
        except (ServiceUnavailable, SessionExpired) as exc:
            raise StoreError(f"lost the connection to {self.describe()}: {exc}") from None
        except Neo4jError as exc:
            raise QueryError(f"Neo4j refused the query: {exc.message or exc}") from None
        except DriverError as exc:
            raise StoreError(f"{self.describe()}: {exc}") from None

    def _read(self, cypher: str, params: dict[str, Any],
              timeout: float | None = None) -> tuple[list[str], list[list[Any]]]:
        return self._run(cypher, params, write=False, timeout=timeout)

    def _write(self, cypher: str, params: dict[str, Any]) -> list[list[Any]]:
        if self._claimed_at is not None and time.monotonic() - self._claimed_at > self._lease / 3:
            self._claim()
        return self._run(cypher, params, write=True)[1]

    def _acquire_writer(self) -> None:
        if self._claimed_at is None:
            try:
                self._run(_LOCK_CONSTRAINT, {}, write=True)
            except QueryError as exc:  # not Neo4j 5 (FalkorDB's Bolt endpoint, which runs one write at a time)
                log.debug("%s: %s", _LOCK_CONSTRAINT, exc)
            self._claim()

    def _claim(self) -> None:
        """Claim or renew the writer lock for ``writer_lease`` seconds; "store busy" if another writer holds it."""
        command = "".join(ch for ch in " ".join(["kgfin", *sys.argv[1:]])[:120] if ch not in "'\\\"")
        who = f"PID {os.getpid()} on {socket.gethostname()} ({command}, since {time.strftime('%Y-%m-%d %H:%M:%S')})"
        now = time.time()
        rows = self._run(_CLAIM, {"me": self._me, "now": now, "expires": now + self._lease, "who": who}, write=True)[1]
        free, holder, expires = rows[0]
        if not free:
            lost = self._claimed_at is not None
            self._claimed_at = None
            left = max(0.0, float(expires) - now) if expires is not None else float("nan")
            raise StoreError(
                f"store busy: {self.describe()} is being written by {holder}"
                + ("; this writer's lease ran out and it lost the store's writer lock" if lost else
                   f"; wait for it to finish (or, if that process is gone, for its lease to run out in {left:.0f} s),"
                   " then run this again"))
        self._claimed_at = time.monotonic()

    def _create_schema(self) -> None:
        items = parse_schema((graphdb_dir() / "schema.cypher").read_text())
        native = True
        for item in items:
            if native:
                try:
                    self._write(item.statement, {})
                    continue
                except QueryError as exc:
                    log.warning("%s did not accept Neo4j 5 schema DDL (%s); creating plain node indexes instead",
                                self.describe(), exc)
                    native = False
            # Not Neo4j 5 (FalkorDB's Bolt endpoint in tests): node key indexes only, as in FalkorStore
            # (relationship property indexes give wrong multi-hop results there).
            if item.target != "node":
                continue
            try:
                self._write(item.portable(), {})
            except QueryError as exc:  # typically: the index exists already
                log.debug("%s: %s", item.portable(), exc)

    def flush(self) -> None:
        """Nothing to do: each committed Neo4j transaction is durable."""

    def close(self) -> None:
        """Release the writer lock (if this store holds it) and close the driver."""
        if not self._closed:
            if self._claimed_at is not None:
                try:
                    self._run(_RELEASE, {"me": self._me}, write=True)
                except (StoreError, QueryError) as exc:  # the lease runs out on its own
                    log.warning("could not release the writer lock of %s: %s", self.describe(), exc)
                self._claimed_at = None
            self._closed = True
            self._driver.close()
