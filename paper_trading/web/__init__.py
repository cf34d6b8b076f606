"""The web dashboard: server-rendered pages over the same selectors and serializers as the API."""
