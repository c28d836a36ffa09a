"""Talking to Conductor servers: the httpx client, auth, and normalisation per server flavour."""
