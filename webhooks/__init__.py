"""The intake: the webhook endpoint, message validation, ingest (authenticate, store, fan
out to orders), the webhook log (events, idempotency keys), its pages, results and replay."""
