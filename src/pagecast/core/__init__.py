"""The pure core: models, domain errors, settings, FFmpeg arguments, the playlist, fMP4, page
events, cadences, Cast screen decisions and restart policies. No trio, no sockets, no
processes, no clock read here: times are arguments. Fast to test, by tables."""
