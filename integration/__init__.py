"""Cluster tooling, ingest, evaluation and benchmarks for opensearch-sesa (the `sesa` command)."""

__version__ = "0.1.0"
