// A company's most technically similar firms in a month (CPC-share correlation).
// :param ticker str     the company
// :param month month    'YYYY-MM'
// :param k int = 10     at most this many firms
MATCH (x:Company {ticker: $ticker})-[r:TECH_SIMILAR]-(y:Company)
WHERE r.month = $month
RETURN y.ticker AS firm, y.name AS name, y.sector AS sector, r.similarity AS similarity
ORDER BY similarity DESC, firm
LIMIT $k
