"""pagecast: turn any web page into a live video stream and cast it to Google Cast TVs."""

__version__ = "0.1.0"
