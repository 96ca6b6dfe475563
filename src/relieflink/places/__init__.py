"""Places: districts, communities (residential compounds) and warehouses."""
