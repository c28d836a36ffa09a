"""Taking over what a server holds: export to manifests and overlays, adopt live edits."""
