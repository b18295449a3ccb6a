"""Sync from the systems teams already use: each source is a small adapter; all go through the CSV import's checks."""
