"""`synthmed evaluate` and `synthmed compare`: every repeat of a RUN scored on one split, summarised
as median and quartiles; reports compared side by side.

job        `evaluate`: the command as a library call (scores, then writes the report folder)
scoring    `evaluate_run`: predictions of every repeat on a split
metrics    classification metrics of one set of predictions; the summary over repeats
report     metrics.json, confusion matrix, predictions.csv; comparing reports
"""
