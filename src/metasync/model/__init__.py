"""Conductor objects as typed models, the registry of kinds, and desired resources."""
