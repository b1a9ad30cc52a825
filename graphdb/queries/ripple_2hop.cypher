// A company's 2-hop ripple neighbourhood in a month: every relationship on a path of length <= 2 from it, with type and weight.
// :param ticker str     the company
// :param month month    'YYYY-MM'
MATCH (x:Company {ticker: $ticker})-[r1:SUPPLIES|SHARES_DIRECTOR|CO_HELD|TECH_SIMILAR]-(a:Company)
WHERE r1.month = $month
WITH DISTINCT x, a
MATCH (a)-[r:SUPPLIES|SHARES_DIRECTOR|CO_HELD|TECH_SIMILAR]-(n:Company)
WHERE r.month = $month
WITH DISTINCT CASE WHEN n = x THEN 1 ELSE 2 END AS hop, r
RETURN hop, startNode(r).ticker AS source, endNode(r).ticker AS target, type(r) AS relation, r.weight AS weight
ORDER BY hop, relation, source, target
