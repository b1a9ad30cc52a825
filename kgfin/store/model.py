"""The graph model in Cypher: the statements both backends run, and the schema translation.

Nodes: ``(:Company {ticker, name, sector})``, ``(:Director {id})``, ``(:Fund {id})``,
``(:CPC {code})`` and one ``(:Snapshot {month, complete, config, stats})`` per month.
Every relationship carries ``month`` ('YYYY-MM'):

* company-company: ``SUPPLIES`` (supplier -> customer), ``SHARES_DIRECTOR``, ``CO_HELD``,
  ``TECH_SIMILAR`` (undirected; stored once, source < target), each with ``weight``;
* facts: ``(:Director)-[:SITS_ON]->(:Company)``, ``(:Fund)-[:HOLDS {weight}]->(:Company)``,
  ``(:Company)-[:PATENTS_IN {patents, share}]->(:CPC)``;
* ``(:Snapshot)-[:HAS_COMPANY {name, sector}]->(:Company)``: the month's universe.

The text here is plain openCypher that FalkorDB and Neo4j 5 both run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kgfin.graph.builders import EDGE_COLUMNS, RELATIONS

__all__ = [
    "COMPANY_LINKS", "ENDPOINTS", "FACT_TYPES", "MONTH_TYPES", "NEIGHBOURS", "SchemaItem", "delete_statements",
    "edges_write", "fact_read", "node_merge", "parse_schema", "relation_read",
]

# relationship types that carry a month, with their endpoint labels and data columns
FACT_TYPES: dict[str, tuple[str, str, str, str, list[str]]] = {
    # type: (from label, from key, to label, to key, property columns)
    "SITS_ON": ("Director", "id", "Company", "ticker", []),
    "HOLDS": ("Fund", "id", "Company", "ticker", ["weight"]),
    "PATENTS_IN": ("Company", "ticker", "CPC", "code", ["patents", "share"]),
}
FACT_FRAMES = {"SITS_ON": ("seats", "director_id", "ticker"), "HOLDS": ("holdings", "fund_id", "ticker"),
               "PATENTS_IN": ("cpc", "ticker", "cpc_group")}
MONTH_TYPES: tuple[str, ...] = (*RELATIONS, *FACT_TYPES)
ENDPOINTS = {**{rel: ("Company", "ticker", "Company", "ticker", EDGE_COLUMNS[rel][2:]) for rel in RELATIONS},
             **FACT_TYPES}
NODE_KEYS = {"Company": "ticker", "Director": "id", "Fund": "id", "CPC": "code", "Snapshot": "month"}
COMPANY_LINKS = "|".join(RELATIONS)  # the company-company relationship types, as a pattern alternative


def node_merge(label: str) -> str:
    """MERGE one batch of ``label`` nodes from ``$rows`` (Company rows also set name and sector)."""
    key = NODE_KEYS[label]
    extra = " SET n.name = row.name, n.sector = row.sector" if label == "Company" else ""
    return f"UNWIND $rows AS row MERGE (n:{label} {{{key}: row.key}}){extra}"


SNAPSHOT_BEGIN = "MERGE (s:Snapshot {month: $month}) SET s.complete = false"
SNAPSHOT_COMPANIES = (
    "UNWIND $rows AS row MATCH (s:Snapshot {month: $month}) MATCH (c:Company {ticker: row.key}) "
    "CREATE (s)-[:HAS_COMPANY {name: row.name, sector: row.sector}]->(c)")
SNAPSHOT_FINISH = (
    "MATCH (s:Snapshot {month: $month}) "
    "SET s.complete = true, s.config = $config, s.stats = $stats, s.kgfin_version = $version")
SNAPSHOT_EXISTS = "MATCH (s:Snapshot {month: $month}) RETURN count(s) AS n"
SNAPSHOT_INFO = "MATCH (s:Snapshot {month: $month}) RETURN s.complete AS complete, s.config AS config"
SNAPSHOT_READ_COMPANIES = (
    "MATCH (s:Snapshot {month: $month})-[h:HAS_COMPANY]->(c:Company) "
    "RETURN c.ticker AS ticker, h.name AS name, h.sector AS sector")
SNAPSHOT_COMPLETE = "MATCH (s:Snapshot {month: $month}) RETURN s.complete AS complete"
MONTHS = "MATCH (s:Snapshot) WHERE s.complete = true RETURN s.month AS month, s.stats AS stats ORDER BY month"
ALL_SNAPSHOTS = "MATCH (s:Snapshot) RETURN s.month AS month, s.complete AS complete ORDER BY month"


def edges_write(rel: str) -> str:
    """CREATE one batch of ``rel`` relationships of ``$month``.

    ``$rows`` groups them by start node: ``[{a: key, edges: [{b: key, <properties>}, ...]}, ...]``
    (one index lookup per start node instead of one per relationship).
    """
    la, ka, lb, kb, cols = ENDPOINTS[rel]
    props = "".join(f", {c}: e.{c}" for c in cols)
    return (f"UNWIND $rows AS row MATCH (a:{la} {{{ka}: row.a}}) UNWIND row.edges AS e "
            f"MATCH (b:{lb} {{{kb}: e.b}}) CREATE (a)-[:{rel} {{month: $month{props}}}]->(b)")


def relation_read(rel: str) -> str:
    """Read the ``rel`` edges of ``$month``."""
    props = ", ".join(f"r.{c} AS {c}" for c in EDGE_COLUMNS[rel][2:])
    return (f"MATCH (a:Company)-[r:{rel}]->(b:Company) WHERE r.month = $month "
            f"RETURN a.ticker AS source, b.ticker AS target, {props}")


def fact_read(rel: str) -> str:
    """Read the bipartite ``rel`` facts of ``$month`` as columns a, b, properties."""
    la, ka, lb, kb, cols = FACT_TYPES[rel]
    props = "".join(f", r.{c} AS {c}" for c in cols)
    return f"MATCH (a:{la})-[r:{rel}]->(b:{lb}) WHERE r.month = $month RETURN a.{ka} AS a, b.{kb} AS b{props}"


def delete_statements() -> list[str]:
    """Statements that remove one month (each deletes at most ``$limit`` rows; repeat until 0)."""
    out = ["MATCH (s:Snapshot {month: $month}) WITH s LIMIT $limit DETACH DELETE s RETURN count(*) AS n"]
    out += [f"MATCH ()-[r:{t}]->() WHERE r.month = $month WITH r LIMIT $limit DELETE r RETURN count(*) AS n"
            for t in MONTH_TYPES]
    return out


ORPHANS = [
    f"MATCH (n:{label}) OPTIONAL MATCH {pattern} WITH n, count(r) AS k WHERE k = 0 "
    "WITH n LIMIT $limit DETACH DELETE n RETURN count(*) AS deleted"
    for label, pattern in (("Director", "(n)-[r:SITS_ON]->()"), ("Fund", "(n)-[r:HOLDS]->()"),
                           ("CPC", "()-[r:PATENTS_IN]->(n)"), ("Company", "(:Snapshot)-[r:HAS_COMPANY]->(n)"))
]
# one breadth-first step of GraphStore.neighbourhood: the companies linked to any of $tickers in $month
NEIGHBOURS = (f"UNWIND $tickers AS t MATCH (:Company {{ticker: t}})-[r:{COMPANY_LINKS}]-(n:Company) "
              "WHERE r.month = $month RETURN DISTINCT n.ticker AS ticker")
COUNT_LABEL = "MATCH (n:{label}) RETURN count(n) AS n"
COUNT_TYPE = "MATCH ()-[r:{type}]->() RETURN count(r) AS n"
COUNT_TYPE_MONTH = "MATCH ()-[r:{type}]->() WHERE r.month = $month RETURN count(r) AS n"


# --- schema ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SchemaItem:
    """One index or uniqueness constraint from ``graphdb/schema.cypher``."""

    statement: str  # the Neo4j 5 text
    kind: str  # "unique" or "index"
    target: str  # "node" or "relationship"
    label: str  # label or relationship type
    prop: str

    def portable(self) -> str:
        """The unnamed ``CREATE INDEX FOR ... ON ...`` form (FalkorDB; a uniqueness constraint becomes an index)."""
        pattern = f"(x:{self.label})" if self.target == "node" else f"()-[x:{self.label}]-()"
        return f"CREATE INDEX FOR {pattern} ON (x.{self.prop})"


_CONSTRAINT = re.compile(
    r"CREATE\s+CONSTRAINT\s+\w+\s+IF\s+NOT\s+EXISTS\s+FOR\s+\((\w+):(\w+)\)\s+REQUIRE\s+\1\.(\w+)\s+IS\s+UNIQUE$", re.I)
_NODE_INDEX = re.compile(r"CREATE\s+INDEX\s+\w+\s+IF\s+NOT\s+EXISTS\s+FOR\s+\((\w+):(\w+)\)\s+ON\s+\(\1\.(\w+)\)$", re.I)
_REL_INDEX = re.compile(
    r"CREATE\s+INDEX\s+\w+\s+IF\s+NOT\s+EXISTS\s+FOR\s+\(\)-\[(\w+):(\w+)\]-\(\)\s+ON\s+\(\1\.(\w+)\)$", re.I)


def parse_schema(text: str, source: str = "schema.cypher") -> list[SchemaItem]:
    """Parse the ';'-separated Neo4j 5 statements of a schema file (``//`` comments allowed)."""
    body = "\n".join(line.split("//", 1)[0] for line in text.splitlines())
    items = []
    for raw in body.split(";"):
        stmt = " ".join(raw.split())
        if not stmt:
            continue
        for regex, kind, target in ((_CONSTRAINT, "unique", "node"), (_NODE_INDEX, "index", "node"),
                                    (_REL_INDEX, "index", "relationship")):
            m = regex.match(stmt)
            if m:
                items.append(SchemaItem(stmt, kind, target, m.group(2), m.group(3)))
                break
        else:
            raise ValueError(f"{source}: unsupported statement {stmt!r} (expected a named IF NOT EXISTS "
                             "uniqueness constraint or node/relationship index)")
    return items
