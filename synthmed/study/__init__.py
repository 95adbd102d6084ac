"""`synthmed study`: a declared grid of mix + train + evaluate cells, with controls, paired
statistics over repeats, a report and figures; resumable, shardable, optionally on Ray.

schema      the study file (TOML): keys, types and their lines
grid        scenarios from the axes, the automatic controls, selective augmentation
sources     synthetic sources: folders, or made from the real train split
cells       one repeat of one cell (mix, train, evaluate) and the cache of finished repeats
executors   where repeats run: in this process, or as Ray tasks
stats       paired differences, bootstrap intervals, Wilcoxon tests, Holm, verdicts
report      results.csv, summary.json, report.md; figures in figures.py
run         the command as a Python call (`run_study`)
"""
