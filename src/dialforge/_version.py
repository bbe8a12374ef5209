"""The package version, in a module of its own so any module can import it without loading
the package's public API (importing `dialforge` imports every command)."""

__version__ = "0.1.0"
