"""`synthmed compress`: a dataset encoded into one bitstream file per image with learned or
classical codecs, a rate-distortion report, and `--decode` back to a dataset.

job             encoding every set and writing the report
plan            the stream sets (codec at quality) of a run, checked before any work
decode          restoring a dataset from a compress output
report          image quality of decoded images and the rate-distortion plot
bd_rate         Bjontegaard delta rate between two rate-distortion curves
bitstream       the file format: header plus codec payload
learned         learned codecs: fit, save, load, encode, decode; models: their networks (nn.Module)
entropy_coding  range coding of the learned codecs' integer latents
refine          encoder-side latent refinement of a fitted learned codec
pillow, imagecodecs_codecs   classical codecs through Pillow and imagecodecs
"""
