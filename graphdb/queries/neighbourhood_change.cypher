// How a company's direct neighbourhood changed between two months: links added, removed or kept, with weights.
// :param ticker str     the company
// :param from_month month   the earlier month 'YYYY-MM'
// :param to_month month     the later month 'YYYY-MM'
MATCH (x:Company {ticker: $ticker})-[r:SUPPLIES|SHARES_DIRECTOR|CO_HELD|TECH_SIMILAR]-(n:Company)
WHERE r.month = $from_month OR r.month = $to_month
WITH n, CASE WHEN type(r) = 'SUPPLIES' AND startNode(r) = n THEN 'SUPPLIED_BY' ELSE type(r) END AS relation, r
WITH n.ticker AS firm, relation,
     max(CASE WHEN r.month = $from_month THEN r.weight END) AS weight_from,
     max(CASE WHEN r.month = $to_month THEN r.weight END) AS weight_to
RETURN firm, relation,
       CASE WHEN weight_from IS NULL THEN 'added' WHEN weight_to IS NULL THEN 'removed' ELSE 'kept' END AS change,
       weight_from, weight_to
ORDER BY change, relation, firm
