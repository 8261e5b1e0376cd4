"""The index: building it from a source's chunks (``build``); the embeddings, vector store and keyword index it
keeps; and hybrid retrieval over them."""
