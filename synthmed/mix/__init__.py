"""`synthmed mix`: a new train split made of a share of each class's real images plus synthetic
images per class; val and test stay the real dataset's.

plan   the per-class plan (`plan_mix`) and writing it (`write_mix`)
"""
