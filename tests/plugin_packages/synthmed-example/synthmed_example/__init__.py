"""Example third-party synthmed plugin (installed by the tests with pip)."""

import typer

from synthmed import hookimpl


def _tiny_classifier(num_classes, in_channels, image_size):
    import torch

    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(in_channels * image_size * image_size, num_classes))


def _invert_policy():
    def apply(images):
        return 1 - images

    return apply


@hookimpl
def register_classifiers(register):
    register("example-linear", _tiny_classifier, input_size=32)


@hookimpl
def register_augmentations(register):
    register("example-invert", _invert_policy)


def hello(name: str = "world") -> None:
    """Say hello (a command added by a plugin)."""
    typer.echo(f"hello {name}")


@hookimpl
def register_commands(app):
    app.command("example-hello")(hello)
