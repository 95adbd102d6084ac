"""Loops and numerics callable from Python without the CLI: training, evaluation, sampling."""
