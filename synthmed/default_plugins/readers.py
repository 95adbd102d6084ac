"""Built-in readers for `preprocess` (synthmed.preprocess.formats): Pillow formats, DICOM,
NIfTI and MedMNIST .npz. numpy and the decoders load when the first file is read."""

from synthmed.hookspecs import hookimpl


@hookimpl
def read_image(path, options):
    from synthmed.preprocess.formats import read_builtin

    return read_builtin(path, options)
