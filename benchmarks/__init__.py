"""Benchmarks for newsdedup: generated corpora whose ground truth says which paragraphs are the same reporting."""
