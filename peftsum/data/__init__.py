"""Datasets: hub, local files and the synthetic generators, turned into prompts and token ids."""
