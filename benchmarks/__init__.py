"""Benchmarks for newsdedup: quality on labeled corpora (the generated syndication corpus among them), speed,
scale, Ray against local, and the fitting of the shipped adapters."""
