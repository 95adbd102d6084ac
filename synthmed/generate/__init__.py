"""`synthmed generate`: synthetic images from class-conditional generators (fitted on the real
train split, then sampled per class) and image-conditional ones (a variation of each source).

job               the command as a library call: requests validated before any work
plan              generator, per-class counts, fitted model folders
sampling          fitting and per-class sampling, resumable and shardable
variation         image-conditional runs (plugins such as openai), resumable
report            quality.json and contact sheets of what was made
fitted            the epoch loop and fit checkpoints the built-in generators share
ddpm, gans        the built-in generators' fit and sample loops
diffusion_models, gan_models    their networks (nn.Module)
fit_state         fit checkpoints for --resume
square            helpers for image-model plugins (square RGB canvas and back)
"""
