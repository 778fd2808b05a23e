"""The Dagster layer: thin wiring of ingest, privacy, dbt and exports as assets."""
