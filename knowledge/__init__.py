"""Knowledge sources with their governance metadata, documents, chunks with embeddings, ingestion and hybrid retrieval
with citations.
"""
