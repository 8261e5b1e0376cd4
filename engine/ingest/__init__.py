"""Ingestion: from a folder or git checkout to structured, linkable, embeddable chunks (``engine.index`` builds
the index from them; nothing here imports it)."""
