"""The package's version (``movinet-pi --version``, the downloader's User-Agent)."""

__version__ = "0.1.0"
