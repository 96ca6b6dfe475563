"""Reports over the operation: the coordinator's day at a glance, the day's map of need and
routes, and a courier's route sheet (read only; ``service.py``)."""
