"""Households and their vulnerable members. Personal and health data: scoped, masked, audited."""
