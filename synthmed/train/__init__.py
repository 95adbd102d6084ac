"""`synthmed train`: classifiers trained N times on a dataset's train split, early-stopped on val.

run        the command as a library call (`train_run`): repeats, outputs, torchrun
settings   `TrainSettings` and the checks on it
data       the splits decoded once into tensors on the device
loop       building a classifier and `fit`, the training loop
report     history.csv and training curves
models     the classifiers (nn.Module): the studies' CNNs and torchvision backbones
"""
