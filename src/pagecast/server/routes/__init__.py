"""The HTTP routes, one router per resource: control, sessions and their screens, streams,
pages, operations."""
