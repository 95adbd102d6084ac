"""`python -m synthmed`: the same command line as the `synthmed` console script (torchrun
launches training this way)."""

from synthmed.cli import main

if __name__ == "__main__":
    main()
