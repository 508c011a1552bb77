"""Course recommendation: embeddings, retrieval and ranking for ganxun."""
