"""Every Cypher statement of the graph, in one place.

The model (all nodes carry ``ns``, the graph namespace, so one Neo4j holds several shops)::

    (:Shopper {user_id})-[:VIEWED {views, carts, weight, first_time, last_time}]->(:Product)
    (:Shopper)-[:BOUGHT {units, first_time, last_time}]->(:Product {sku, category, units,
        revenue, orders, views, buyers, pagerank, weighted_degree, influence_rank})
    (:Product)-[:IN_CATEGORY]->(:Category {name})
    (:Product)-[:CO_PURCHASED {weight, lift}]->(:Product)    one edge per pair, a.sku < b.sku
    (:LoadState {table, version, loaded_at})                  the gold versions loaded

Writes take ``$rows`` (a batch, see ``TILLFLOW_GRAPH_BATCH_ROWS``) and ``$ns``.
"""

from __future__ import annotations

from typing import LiteralString

SCHEMA: tuple[LiteralString, ...] = (
    "CREATE CONSTRAINT graph_product IF NOT EXISTS FOR (n:Product) REQUIRE (n.ns, n.sku) IS UNIQUE",
    "CREATE CONSTRAINT graph_shopper IF NOT EXISTS "
    "FOR (n:Shopper) REQUIRE (n.ns, n.user_id) IS UNIQUE",
    "CREATE CONSTRAINT graph_category IF NOT EXISTS "
    "FOR (n:Category) REQUIRE (n.ns, n.name) IS UNIQUE",
    "CREATE CONSTRAINT graph_load_state IF NOT EXISTS "
    "FOR (n:LoadState) REQUIRE (n.ns, n.table) IS UNIQUE",
    "CREATE INDEX graph_product_rank IF NOT EXISTS FOR (n:Product) ON (n.ns, n.influence_rank)",
    "CALL db.awaitIndexes(300)",
)

LOAD_STATE: LiteralString = """
MATCH (l:LoadState {ns: $ns}) RETURN l.table AS table, l.version AS version
"""

SAVE_LOAD_STATE: LiteralString = """
UNWIND $rows AS row
MERGE (l:LoadState {ns: $ns, table: row.table})
SET l.version = row.version, l.loaded_at = datetime()
"""

MERGE_PRODUCTS: LiteralString = """
UNWIND $rows AS row MERGE (:Product {ns: $ns, sku: row.sku})
"""

MERGE_SHOPPERS: LiteralString = """
UNWIND $rows AS row MERGE (:Shopper {ns: $ns, user_id: row.user_id})
"""

SET_CATEGORIES: LiteralString = """
UNWIND $rows AS row
MATCH (p:Product {ns: $ns, sku: row.sku})
MERGE (c:Category {ns: $ns, name: row.category})
SET p.category = row.category
WITH p, c
OPTIONAL MATCH (p)-[old:IN_CATEGORY]->(other:Category) WHERE other <> c
DELETE old
WITH DISTINCT p, c
MERGE (p)-[:IN_CATEGORY]->(c)
"""

SET_PRODUCT_TOTALS: LiteralString = """
UNWIND $rows AS row
MATCH (p:Product {ns: $ns, sku: row.sku})
SET p.units = row.units, p.revenue = row.revenue, p.orders = row.orders, p.views = row.views
"""

CLEAR_SHOPPER_EDGES: LiteralString = """
MATCH (:Shopper {ns: $ns})-[r:VIEWED|BOUGHT]->()
CALL (r) { DELETE r } IN TRANSACTIONS OF 10000 ROWS
"""

CLEAR_CO_PURCHASED: LiteralString = """
MATCH (:Product {ns: $ns})-[r:CO_PURCHASED]->()
CALL (r) { DELETE r } IN TRANSACTIONS OF 10000 ROWS
"""

_INTERACTION_ENDS: LiteralString = """
UNWIND $rows AS row
MATCH (s:Shopper {ns: $ns, user_id: row.user_id})
MATCH (p:Product {ns: $ns, sku: row.sku})
"""

# Times arrive as epoch milliseconds (cheaper to send than datetimes).
_SET_VIEWED: LiteralString = """
SET r.views = row.views, r.carts = row.carts, r.weight = row.weight,
    r.first_time = datetime({epochMillis: row.first_time}),
    r.last_time = datetime({epochMillis: row.last_time})
"""

_SET_BOUGHT: LiteralString = """
SET r.units = row.purchases, r.first_time = datetime({epochMillis: row.first_time}),
    r.last_time = datetime({epochMillis: row.last_time})
"""

# Incremental loads MERGE; a full load (edges cleared first) CREATEs, which skips the lookup.
MERGE_VIEWED: LiteralString = _INTERACTION_ENDS + "MERGE (s)-[r:VIEWED]->(p)" + _SET_VIEWED
CREATE_VIEWED: LiteralString = _INTERACTION_ENDS + "CREATE (s)-[r:VIEWED]->(p)" + _SET_VIEWED
MERGE_BOUGHT: LiteralString = _INTERACTION_ENDS + "MERGE (s)-[r:BOUGHT]->(p)" + _SET_BOUGHT
CREATE_BOUGHT: LiteralString = _INTERACTION_ENDS + "CREATE (s)-[r:BOUGHT]->(p)" + _SET_BOUGHT

DELETE_VIEWED: LiteralString = """
UNWIND $rows AS row
MATCH (:Shopper {ns: $ns, user_id: row.user_id})-[r:VIEWED]->(:Product {ns: $ns, sku: row.sku})
DELETE r
"""

DELETE_BOUGHT: LiteralString = """
UNWIND $rows AS row
MATCH (:Shopper {ns: $ns, user_id: row.user_id})-[r:BOUGHT]->(:Product {ns: $ns, sku: row.sku})
DELETE r
"""

SET_BUYERS: LiteralString = """
UNWIND $rows AS row
MATCH (p:Product {ns: $ns, sku: row.sku})
SET p.buyers = row.buyers
"""

MERGE_PAIRS: LiteralString = """
UNWIND $rows AS row
MATCH (a:Product {ns: $ns, sku: row.a})
MATCH (b:Product {ns: $ns, sku: row.b})
MERGE (a)-[r:CO_PURCHASED]->(b)
SET r.weight = row.weight
"""

DELETE_PAIRS: LiteralString = """
UNWIND $rows AS row
MATCH (:Product {ns: $ns, sku: row.a})-[r:CO_PURCHASED]->(:Product {ns: $ns, sku: row.b})
DELETE r
"""

# Lift depends on how many shoppers bought anything, so every edge's lift moves on each load.
UPDATE_LIFT: LiteralString = """
MATCH (a:Product {ns: $ns})-[r:CO_PURCHASED]->(b:Product)
CALL (a, r, b) {
  SET r.lift = toFloat(r.weight) * $shoppers / (a.buyers * b.buyers)
} IN TRANSACTIONS OF 10000 ROWS
"""

SET_INFLUENCE: LiteralString = """
UNWIND $rows AS row
MATCH (p:Product {ns: $ns, sku: row.sku})
SET p.pagerank = row.pagerank, p.weighted_degree = row.degree, p.influence_rank = row.rank
"""

# --- Reads (the API, the recommender's candidate source, the tests)

RELATED: LiteralString = """
MATCH (p:Product {ns: $ns, sku: $sku})
RETURN COLLECT {
  MATCH (p)-[r:CO_PURCHASED]-(o:Product)
  WITH o, r ORDER BY r.weight DESC, r.lift DESC, o.sku LIMIT $limit
  RETURN {sku: o.sku, category: o.category, weight: r.weight, lift: r.lift}
} AS related
"""

INFLUENCE: LiteralString = """
MATCH (p:Product {ns: $ns, sku: $sku})
RETURN p.sku AS sku, p.category AS category, p.pagerank AS pagerank,
       p.weighted_degree AS weighted_degree, p.influence_rank AS rank,
       p.buyers AS buyers, COUNT { (p)-[:CO_PURCHASED]-() } AS neighbours,
       COUNT { (q:Product {ns: $ns}) } AS products
"""

ALL_PRODUCTS: LiteralString = """
MATCH (p:Product {ns: $ns}) RETURN p.sku AS sku ORDER BY sku
"""

# The recommender's candidates: the most *specific* co-purchases (lift), with enough support.
CANDIDATES: LiteralString = """
UNWIND $skus AS sku
MATCH (p:Product {ns: $ns, sku: sku})
RETURN sku, COLLECT {
  MATCH (p)-[r:CO_PURCHASED]-(o:Product) WHERE r.weight >= $min_weight
  WITH o, r ORDER BY r.lift DESC, r.weight DESC, o.sku LIMIT $limit
  RETURN [o.sku, r.lift]
} AS candidates
"""

NEIGHBOURS: LiteralString = """
UNWIND $skus AS sku
MATCH (p:Product {ns: $ns, sku: sku})
RETURN sku, COLLECT {
  MATCH (p)-[r:CO_PURCHASED]-(o:Product)
  WITH o, r ORDER BY r.weight DESC, r.lift DESC, o.sku LIMIT $limit
  RETURN {sku: o.sku, category: o.category, weight: r.weight, lift: r.lift}
} AS related
"""

# Dropping a namespace: relationships first, in batches (a product has thousands), then nodes.
DROP_EDGES: LiteralString = """
MATCH (n {ns: $ns})-[r]->()
CALL (r) { DELETE r } IN TRANSACTIONS OF 10000 ROWS
"""

DROP_NODES: LiteralString = """
MATCH (n {ns: $ns})
CALL (n) { DELETE n } IN TRANSACTIONS OF 10000 ROWS
"""
