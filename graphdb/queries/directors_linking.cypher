// Directors seated on the boards of both X and Y in a month.
// :param x str          one company
// :param y str          the other company
// :param month month    'YYYY-MM'
MATCH (a:Company {ticker: $x})<-[s1:SITS_ON]-(d:Director)-[s2:SITS_ON]->(b:Company {ticker: $y})
WHERE s1.month = $month AND s2.month = $month
RETURN DISTINCT d.id AS director
ORDER BY director
