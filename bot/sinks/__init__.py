"""Destinations for alerts: one module per destination, each formats and sends."""
