"""The service root, the HTTP API and the device directory; the one place where domain errors
become HTTP statuses."""
