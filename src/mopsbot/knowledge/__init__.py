"""Knowledge: ingest the workspace documents and retrieve cited, permission-filtered passages."""
