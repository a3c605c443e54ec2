"""The package version, in a module of its own: the file formats stamp it without importing the package."""

__version__ = "0.1.0"
