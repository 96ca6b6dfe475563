"""Notices to residents: an outbox written beside the events that cause them, templates per
language, and the channels (SMS gateway, e-mail) a sender delivers them by."""
