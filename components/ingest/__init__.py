"""Ingest a data source into a validated canonical dataset artifact."""
