"""`python die_at_step.py ARGS...`: run `synthmed ARGS...` and die (os._exit(137), as SIGKILL
would, no handler runs) just before its Nth write, rename or removal under the folder
DIE_UNDER, N = DIE_AT. The audit hook sees every such call, so a test can kill a command at
each file-system step it takes in its unfinished output, one step per process."""

from __future__ import annotations

import os
import sys

STEPS = ("open", "os.rename", "os.replace", "os.remove", "os.rmdir", "os.mkdir", "shutil.rmtree")


def _writes(event: str, args: tuple) -> bool:
    if event != "open":
        return True
    mode, flags = (args[1] if len(args) > 1 else "r"), (args[2] if len(args) > 2 else 0)
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return bool(isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR))


def main() -> None:
    target, under = int(os.environ["DIE_AT"]), os.path.abspath(os.environ["DIE_UNDER"])
    seen = 0

    def hook(event: str, args: tuple) -> None:
        nonlocal seen
        if event in STEPS and args and isinstance(args[0], (str, bytes, os.PathLike)):
            path = os.path.abspath(os.fsdecode(args[0]))
            if (path == under or path.startswith(under + os.sep)) and _writes(event, args):
                seen += 1
                if seen == target:
                    sys.stderr.write(f"died at step {seen}: {event} {path}\n")
                    sys.stderr.flush()
                    os._exit(137)

    sys.addaudithook(hook)
    from synthmed.cli import main as synthmed

    raise SystemExit(synthmed(sys.argv[1:]))


if __name__ == "__main__":
    main()
