"""The neutral low-level package: owning processes, a DevTools client, a player browser, a
loopback HTTP server, an mDNS registration, where the pinned players and binaries are. The
service and the virtual TV both use it; it imports nothing else of pagecast, so nothing of
either side hides in it."""
