"""`synthmed interpolate`: new images decoded from weighted mixes of autoencoder latents.

job        the command as a library call: validate, fit or load, interpolate, write
latent     fitting the autoencoder, planning parents and weights, decoding interpolants
quality    reconstruction fidelity and interpolant novelty (quality.json), strips
models     the autoencoders (nn.Module)
"""
