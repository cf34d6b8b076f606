"""Paper transactions: fee paths, gas strategies, retries with escalation and sandwich risk."""
