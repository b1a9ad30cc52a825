// Customers of a company in a month, by value of supplies (largest first).
// :param ticker str     the supplier
// :param month month    'YYYY-MM'
// :param k int = 50     at most this many rows
MATCH (s:Company {ticker: $ticker})-[r:SUPPLIES]->(c:Company)
WHERE r.month = $month
RETURN c.ticker AS customer, c.name AS name, r.value_usd AS value_usd,
       r.reverse_weight AS share_of_sales
ORDER BY value_usd DESC, customer
LIMIT $k
