-- pgvector holds the embeddings of messages and long-term memories.
CREATE EXTENSION IF NOT EXISTS vector;
