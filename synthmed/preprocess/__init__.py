"""The pieces of `synthmed preprocess`, by concern.

reading   the `read_image` hook call and reader options
steps     per-image processing: intensity, channels, foreground crop, morphology, resize, quantise
labels    where labels, subjects and input splits come from (folders, regex, CSV)
splits    stratified, subject-grouped split assignment and duplicate handling

The driver that runs them over files (with a process pool) is `synthmed.engine.preprocessing`.
"""
