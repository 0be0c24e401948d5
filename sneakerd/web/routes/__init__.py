"""One module per resource of docs/API.md's REST table."""
