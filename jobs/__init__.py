"""The newsdedup batch job: typed config, the stages (ingest, paragraphs, embed, index, pairs, cluster), the
output tables, the executors, the run loop and the CLI."""
