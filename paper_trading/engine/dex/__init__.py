"""DEX trade simulation: pools, quotes, gas and reverts."""
