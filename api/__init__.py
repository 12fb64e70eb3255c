"""The tillflow HTTP API (FastAPI): ingestion now; prices, recommendations and pages later."""
