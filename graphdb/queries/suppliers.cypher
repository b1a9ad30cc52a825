// Suppliers of a company in a month, by value of supplies (largest first).
// :param ticker str     the customer
// :param month month    'YYYY-MM'
// :param k int = 50     at most this many rows
MATCH (s:Company)-[r:SUPPLIES]->(c:Company {ticker: $ticker})
WHERE r.month = $month
RETURN s.ticker AS supplier, s.name AS name, r.value_usd AS value_usd,
       r.weight AS share_of_purchases
ORDER BY value_usd DESC, supplier
LIMIT $k
