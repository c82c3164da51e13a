"""Command-line commands of the bridge, one module per area."""
