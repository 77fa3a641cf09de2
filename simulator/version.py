"""convsim's version, read once from the installed package's metadata."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("convsim")
except PackageNotFoundError:  # run from a source tree that was never installed
    VERSION = "0+unknown"
