"""Encoders for the views (Pairwise-CL view-level encoders, projection heads, classifier)."""
