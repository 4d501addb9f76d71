"""The subcommands besides the live run: ``info``, ``eval``, ``bench`` and ``service``."""
