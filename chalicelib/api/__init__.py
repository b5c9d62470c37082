"""Chalice blueprints: HTTP routes, queue and stream consumers, schedules. Thin by design."""
