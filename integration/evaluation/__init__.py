"""`sesa eval`: retrieval quality of the search modes on BEIR datasets through the real cluster.

- `modes`: a search mode -> the request body (one code path for every mode)
- `metrics`: nDCG@10, Recall@100, MRR@10 with ranx (graded judgements as graded gains), per query
- `significance`: paired randomization test between two modes' per-query scores
- `runner`: runs every judged query of a split in every mode
- `environment`: versions of the cluster, plugin, models, and the hardware
- `report`: report.json, report.md and a PNG chart
- `cli`: the `sesa ingest` / `sesa eval` subcommands (`register(subparsers)`)

Importing this package is cheap; ranx, numpy and matplotlib are imported where they are used.
"""
