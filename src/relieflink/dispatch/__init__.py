"""Dispatch: fleets, plans, routes, stops, parcels and tracking."""
