"""Enrichment of parsed log documents from local data (GeoIP); no network calls per document."""
