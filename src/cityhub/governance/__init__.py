"""Governance: identity, policy decisions, catalogue, sharing, audit ledger, privacy, quality."""
