"""Simulated relief operations over the real services: the demo, what-ifs and outcome metrics."""
