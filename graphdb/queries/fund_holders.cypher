// Funds holding a company in a month, by portfolio weight.
// :param ticker str     the company
// :param month month    'YYYY-MM'
MATCH (f:Fund)-[h:HOLDS]->(c:Company {ticker: $ticker})
WHERE h.month = $month
RETURN f.id AS fund, h.weight AS weight
ORDER BY weight DESC, fund
