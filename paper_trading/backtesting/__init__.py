"""The `backtest` command's outputs: the result document, its summary, HTML report and storage."""
