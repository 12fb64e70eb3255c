"""The co-purchase and influence graph in Neo4j, loaded incrementally from gold.

Reads top-down: ``gold`` (Delta snapshots and what changed between two versions) →
``copurchase`` (who bought what together, lift) → ``influence`` (PageRank over co-purchases) →
``cypher`` (every statement) → ``load`` (``tillflow batch graph``) → ``queries`` (what the API
serves).
"""
