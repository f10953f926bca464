"""Turn ingestion, sentiment monitoring and business metrics."""
