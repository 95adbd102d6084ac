"""`synthmed preprocess`: raw files (PNG/JPEG/TIFF, DICOM, NIfTI, MedMNIST) into a dataset folder.

job       the command as a library call: read, process, split and write
plan      the configuration and the input files with their labels, subjects and splits
options   command-line values into a `PreprocessConfig`, validated first
reading   the `read_image` hook call and reader options
steps     per-image processing: intensity, channels, foreground crop, morphology, resize, quantise
labels    where labels, subjects and input splits come from (folders, regex, CSV)
splits    stratified, subject-grouped split assignment and duplicate handling
"""
