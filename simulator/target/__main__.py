"""`python -m simulator.target ARGS` is `convsim target ARGS` (how TargetProcess starts it):
bad input and a busy port are one line and exit 2, as from `convsim`."""

import sys

from simulator.target.command import main

if __name__ == "__main__":
    main(sys.argv[1:])
