"""Paper B: emotion clusters in speaker embeddings and cluster-contrastive pre-training."""
