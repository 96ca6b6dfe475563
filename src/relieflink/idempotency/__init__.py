"""Safe retries: the first answer to a request with an ``Idempotency-Key`` is kept and replayed."""
