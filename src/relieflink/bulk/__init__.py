"""Bulk import and export of registry records as CSV or XLSX, in the same columns both ways."""
