"""Built-in codecs for `synthmed compress`: learned (factorized prior, mean-scale hyperprior, and
the hyperprior with a checkerboard context) and
classical through Pillow (PNG, JPEG, WebP, and JPEG 2000 where Pillow has OpenJPEG) and
imagecodecs (JPEG XL lossy and lossless, AVIF, JPEG-LS)."""

from synthmed.hookspecs import hookimpl


@hookimpl
def register_codecs(register):
    from synthmed.compress import imagecodecs_codecs, learned, pillow

    register("learned-factorized", learned.factorized_codec, learned=True)
    register("learned-hyperprior", learned.hyperprior_codec, learned=True)
    register("learned-checkerboard", learned.checkerboard_codec, learned=True)
    register("png", pillow.png_codec, learned=False)
    register("jpeg", pillow.jpeg_codec, learned=False)
    if pillow.webp_available():
        register("webp", pillow.webp_codec, learned=False)
    if pillow.jpeg2000_available():
        register("jpeg2000", pillow.jpeg2000_codec, learned=False)
    for name, factory in imagecodecs_codecs.FACTORIES.items():  # JPEG XL, AVIF, JPEG-LS
        register(name, factory, learned=False)
