"""Notifications: events (order filled, feed down, ...) sent to the operator's destinations
through apprise. The public entry point is :func:`notify.events.emit`."""
