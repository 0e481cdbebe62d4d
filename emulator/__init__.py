"""A local OpenAI-compatible server (Files, Batches, Responses, Chat, Embeddings, Models) with an
emulated clock, injectable faults and signed webhooks. See emulator/README.md."""
