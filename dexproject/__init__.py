"""The dexpaper Django project."""
