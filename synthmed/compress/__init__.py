"""`synthmed compress`: a dataset encoded into one bitstream file per image with learned or
classical codecs, a rate-distortion report, and `--decode` back to a dataset.

job        encoding every set and writing the report
decode     restoring a dataset from a compress output
report     image quality of decoded images and the rate-distortion plot
bitstream  the file format: header plus codec payload
learned    learned codecs with an entropy coder; models: their networks (nn.Module)
pillow     classical codecs through Pillow
"""
