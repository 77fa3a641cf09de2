"""`python -m simulator.cli ...` runs the `convsim` command (for scripts and benchmarks)."""

from simulator.cli import main

if __name__ == "__main__":
    main()
