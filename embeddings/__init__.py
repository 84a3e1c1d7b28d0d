"""Text to vectors and vector search: offline model loading, the encoder, the embedding cache, the FAISS index.

This package knows nothing about articles or outlets; ``jobs`` uses it, never the other way round.
"""
