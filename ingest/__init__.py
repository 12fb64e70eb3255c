"""Getting events into Kafka: validation against the contract and an idempotent producer.

Used by ``POST /events/{topic}`` (api/) and ``tillflow replay``.
"""
