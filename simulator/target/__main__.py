"""`python -m simulator.target ARGS` is `convsim target ARGS` (how TargetProcess starts it):
bad input and a busy port are one line and exit 2, as from `convsim`."""

import sys

from simulator.cli import main

if __name__ == "__main__":
    main(["target", *sys.argv[1:]])
