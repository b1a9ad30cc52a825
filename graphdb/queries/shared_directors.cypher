// Firms sharing directors with a company in a month, with the directors' ids.
// :param ticker str     the company
// :param month month    'YYYY-MM'
MATCH (x:Company {ticker: $ticker})<-[s1:SITS_ON]-(d:Director)-[s2:SITS_ON]->(y:Company)
WHERE s1.month = $month AND s2.month = $month AND y <> x
WITH y, d ORDER BY d.id
RETURN y.ticker AS firm, y.name AS name, count(d) AS directors, collect(d.id) AS director_ids
ORDER BY directors DESC, firm
