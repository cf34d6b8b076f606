"""Read queries for the API and pages: every one scoped to a user's own accounts."""
