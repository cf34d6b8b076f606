"""Paper trading for DEX bots: the Django adapters around the pure `engine` package."""
