"""nn.Module code: classifiers, GANs, autoencoders, codecs."""
