// A company's CPC groups over the patent window ending in a month, by share of its patents.
// :param ticker str     the company
// :param month month    'YYYY-MM'
MATCH (c:Company {ticker: $ticker})-[p:PATENTS_IN]->(g:CPC)
WHERE p.month = $month
RETURN g.code AS cpc_group, p.patents AS patents, p.share AS share
ORDER BY share DESC, cpc_group
