"""Gymnasium tasks where memory and continuous time matter."""
