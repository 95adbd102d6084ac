"""synthmed plugin: generator `openai`, variations of real images through the OpenAI images API.

Registered through the `synthmed` entry-point group; nothing heavy is imported until the
factory runs (`synthmed plugins` stays instant).
"""

from importlib import metadata

from synthmed import hookimpl

try:
    __version__ = metadata.version("synthmed-openai")
except metadata.PackageNotFoundError:  # imported from a source tree without installing
    __version__ = "0.1.0"


def _openai_generator(**args):
    from synthmed_openai.generator import OpenAIImageGenerator

    return OpenAIImageGenerator(**args)


@hookimpl
def register_generators(register):
    register("openai", _openai_generator, conditioning="image")
