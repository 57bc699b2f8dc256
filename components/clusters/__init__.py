"""Interest clusters: item embeddings -> two-level k-means -> unique language descriptions."""
