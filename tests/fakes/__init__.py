"""Loopback fakes of the external services, spoken to by the real client libraries."""
