// kgfin graph schema (Neo4j 5 syntax). Neo4j runs these statements as written; the embedded
// FalkorDB store runs each as an unnamed `CREATE INDEX FOR ... ON ...` (FalkorDB has no
// IF NOT EXISTS and keeps key uniqueness through MERGE). Relationship indexes on `month`
// make per-month reads, deletes and the library queries fast.

CREATE CONSTRAINT company_ticker IF NOT EXISTS FOR (c:Company) REQUIRE c.ticker IS UNIQUE;
CREATE CONSTRAINT director_id IF NOT EXISTS FOR (d:Director) REQUIRE d.id IS UNIQUE;
CREATE CONSTRAINT fund_id IF NOT EXISTS FOR (f:Fund) REQUIRE f.id IS UNIQUE;
CREATE CONSTRAINT cpc_code IF NOT EXISTS FOR (g:CPC) REQUIRE g.code IS UNIQUE;
CREATE CONSTRAINT snapshot_month IF NOT EXISTS FOR (s:Snapshot) REQUIRE s.month IS UNIQUE;

CREATE INDEX supplies_month IF NOT EXISTS FOR ()-[r:SUPPLIES]-() ON (r.month);
CREATE INDEX shares_director_month IF NOT EXISTS FOR ()-[r:SHARES_DIRECTOR]-() ON (r.month);
CREATE INDEX co_held_month IF NOT EXISTS FOR ()-[r:CO_HELD]-() ON (r.month);
CREATE INDEX tech_similar_month IF NOT EXISTS FOR ()-[r:TECH_SIMILAR]-() ON (r.month);
CREATE INDEX sits_on_month IF NOT EXISTS FOR ()-[r:SITS_ON]-() ON (r.month);
CREATE INDEX holds_month IF NOT EXISTS FOR ()-[r:HOLDS]-() ON (r.month);
CREATE INDEX patents_in_month IF NOT EXISTS FOR ()-[r:PATENTS_IN]-() ON (r.month);
