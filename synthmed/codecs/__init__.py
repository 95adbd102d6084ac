"""Image codecs for `synthmed compress`: the interface every codec follows.

A codec is built by the factory it registers (`register_codecs` hook) and works on the
pixel arrays a dataset stores: (H, W) or (H, W, C), uint8 or uint16. The `compress`
engine wraps its payload in a bitstream file (synthmed.codecs.bitstream).

    class ImageCodec(Protocol):
        name: str                       # registry name, written into every header
        stream_version: int             # payload layout version, checked when decoding
        lossless: bool
        quality_range: tuple[int, int] | None   # None: the codec has no quality setting
        default_qualities: tuple[int, ...]      # used when --quality is not given
        max_side: int                   # largest height or width it can encode
        bit_depths: tuple[int, ...]     # (8,) or (8, 16)
        needs_fit: bool                 # learned codecs: fit/save/load below

        def encode(self, pixels, *, quality) -> bytes            # payload only
        def decode(self, payload, *, quality, shape, dtype) -> np.ndarray
        def model_tag(self, quality) -> bytes                     # 8 bytes; zeros if no model

    Learned codecs (needs_fit=True) also have
        def fit(self, images, *, quality, epochs, device, seed, progress=None) -> None
        def save(self, folder, *, quality) -> None
        def load(self, folder, *, quality) -> None
"""
