"""Pytest fixtures for real protocol peers (an SMTP server, a Twilio-speaking HTTP server).

Loaded as a plugin from tests/conftest.py.
"""
