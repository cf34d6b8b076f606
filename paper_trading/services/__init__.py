"""Use cases called by commands, the API and tasks: thin callers, logic here."""
