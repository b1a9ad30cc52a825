// The most connected firms in a month: distinct neighbours over all relation types, and relationships.
// :param month month    'YYYY-MM'
// :param k int = 20     at most this many firms
MATCH (c:Company)-[r:SUPPLIES|SHARES_DIRECTOR|CO_HELD|TECH_SIMILAR]-(n:Company)
WHERE r.month = $month
RETURN c.ticker AS firm, c.name AS name, count(DISTINCT n) AS neighbours, count(r) AS relationships
ORDER BY neighbours DESC, relationships DESC, firm
LIMIT $k
