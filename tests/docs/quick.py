"""The quick convention the documentation tests run commands under.

Every command block of README.md and docs/*.md runs as written, through a `synthmed` on PATH
that caps sizes, epochs and counts before calling the real command line, so a page runs in
seconds on a CPU:

- `--epochs`, `--fit-epochs`: 1; a command that fits a model without `--fit-epochs` gets 1;
- `--repeats`: 2; `--steps`: 2; `--per-class`, `--limit`: 2; `--per-image`: 1;
- `sample-data`: 16 px (`--size 16`) at `--scale` 0.03 at most; `preprocess --size`: 16;
- `--device cuda...`: cpu.

Anything else (an unknown option, a wrong value, a missing input) fails as it would for a reader.
"""

from __future__ import annotations

import sys

CAPS = {"--epochs": 1, "--fit-epochs": 1, "--repeats": 2, "--steps": 2, "--per-class": 2, "--per-image": 1,
        "--limit": 2, "--scale": 0.03}
SIZE = 16
FITS = {"generate", "interpolate", "compress"}  # commands that fit a model unless given one


def _capped(option: str, value: str) -> str:
    cap = CAPS[option]
    try:
        number = type(cap)(value)
    except ValueError:
        return value  # the command line reports it
    return str(min(number, cap))


def quick(args: list[str]) -> list[str]:
    """`args` with the caps applied (see the module docstring)."""
    command = next((a for a in args if not a.startswith("-")), "")
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, inline = arg.partition("=")
        if name in CAPS or (name == "--size" and command in ("sample-data", "preprocess")) or name == "--device":
            value = inline if eq else (args[i + 1] if i + 1 < len(args) else "")
            i += 1 if eq else 2
            if name == "--size":
                value = str(SIZE)
            elif name == "--device":
                value = "cpu" if value.startswith("cuda") else value
            else:
                value = _capped(name, value)
            out += [name, value]
            continue
        out.append(arg)
        i += 1
    if command == "sample-data" and "--size" not in out:
        out += ["--size", str(SIZE)]
    fitting = command in FITS and not {"--model", "--decode", "--fit-epochs", "--dry-run"} & set(out)
    if command == "generate":
        fitting = fitting and not any(g in out for g in ("openai", "sd-variation"))
    if command == "compress":
        fitting = fitting and any("learned" in a for a in out)
    if fitting:
        out += ["--fit-epochs", "1"]
    return out


def main() -> None:
    from synthmed.cli import main as cli

    sys.exit(cli(quick(sys.argv[1:])))


if __name__ == "__main__":
    main()
