"""Presets and the `ncp` console command."""
