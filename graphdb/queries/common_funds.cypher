// Funds holding both X and Y in a month, with their portfolio weights.
// :param x str          one company
// :param y str          the other company
// :param month month    'YYYY-MM'
MATCH (a:Company {ticker: $x})<-[h1:HOLDS]-(f:Fund)-[h2:HOLDS]->(b:Company {ticker: $y})
WHERE h1.month = $month AND h2.month = $month
RETURN f.id AS fund, h1.weight AS weight_x, h2.weight AS weight_y,
       CASE WHEN h1.weight < h2.weight THEN h1.weight ELSE h2.weight END AS overlap
ORDER BY overlap DESC, fund
