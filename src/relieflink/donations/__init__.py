"""Donations: programs, pledges, status history, discrepancies, partner threads, webhooks."""
