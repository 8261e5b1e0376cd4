"""Ingestion: from a folder or git checkout to structured, linkable, embeddable chunks."""
