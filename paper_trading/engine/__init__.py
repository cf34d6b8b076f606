"""The trading engine: plain Python, no Django.

Live paper trading, replays and backtests all drive the same objects; only the price source,
the tick schedule and the event sink differ.
"""
