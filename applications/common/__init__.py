"""Utilities shared by the application command lines."""
