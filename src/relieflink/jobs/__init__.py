"""One durable job runner: allocation runs, dispatch plans and webhook deliveries (resident
notices can ride on it too).

A job is a row of the ``jobs`` table: enqueued in the caller's transaction
(:func:`service.enqueue`), claimed by a worker (:class:`runner.Worker`; ``relieflink worker``,
or the server itself), and kept with its progress, attempts and outcome through restarts.
Importing this package registers every job kind.
"""

from relieflink.jobs import allocation, dispatch, notices, runner, service, webhooks

__all__ = ["allocation", "dispatch", "notices", "runner", "service", "webhooks"]
