"""One module per resource of API.md's REST table."""
