"""NGSI-LD domain: entities, JSON-LD contexts, the query language and geo-queries (no I/O)."""
