"""Metrics, health checks and their HTTP endpoints."""
