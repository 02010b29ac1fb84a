"""newshound: a self-hosted news-watch bot."""

__version__ = "0.1.0"
