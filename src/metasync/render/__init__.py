"""Formatting of rendered resources, plans, drift and status for people and programs."""
