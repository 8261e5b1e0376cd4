"""The index: embeddings, the vector store, the keyword index and hybrid retrieval over them."""
