"""`python -m strongroom` runs the command line."""

from strongroom.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
