"""`sesa bench`: benchmarks of the server, ingest and search, reported as ratios measured in one run."""
