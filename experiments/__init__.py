"""Thin absl-flags scripts reproducing the papers' tables and figures."""
