"""The newsdedup batch job: typed config, ingest, paragraphs, clustering, tables, orchestration and the CLI."""
