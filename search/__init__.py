"""Product search and log search on OpenSearch: index layout, queries, the stream indexer."""
