"""`manage.py optimize` end to end: the printed table, the JSON result and its error messages."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

#: A week of the shipped hourly recording, WETH on Arbitrum: a search of seconds.
PERIOD = ["--chain", "arbitrum", "--tokens", "WETH", "--from", "2026-01-01", "--to", "2026-01-08"]


def optimize(*args: str) -> str:
    out = io.StringIO()
    call_command("optimize", *args, "--no-progress", stdout=out)
    return out.getvalue()


def test_holdout_grid_prints_in_and_out_of_sample_and_writes_json(tmp_path: Path) -> None:
    output = tmp_path / "search.json"
    text = optimize(
        "--strategy", "intel_slider", *PERIOD, "--metric", "total_return",
        "--workers", "2", "--top", "3", "--output", str(output),
    )  # fmt: skip

    doc = json.loads(output.read_text())
    assert doc["strategy"] == "intel_slider"
    assert doc["method"] == "grid"
    assert doc["split"] == "holdout"
    assert doc["bars"] == 169
    assert doc["space"] == {"level": "1..10 (10)"}
    [fold] = doc["folds"]
    assert fold["evaluated"] == 10
    assert fold["train"]["bars"] + fold["test"]["bars"] == 169
    assert fold["train"]["to"] < fold["test"]["from"]
    best = fold["best"]
    assert len(best) == 3
    assert [c["train_score"] for c in best] == sorted(
        (c["train_score"] for c in best), reverse=True
    )
    assert all(c["test"]["bars"] == fold["test"]["bars"] for c in best)
    assert fold["baseline"]["params"] == {"level": 5}

    assert (
        "Optimising intel_slider on arbitrum, 1h bars 2026-01-01 00:00 .. 2026-01-08 00:00" in text
    )
    assert "total_return in  total_return out  return % in  return % out" in text
    lines = text.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("----"))
    assert lines[rule + 1].split()[:4] == [
        "1",
        f"{best[0]['params']['level']}",
        f"{best[0]['train_score']:.3f}",
        f"{best[0]['test_score']:.3f}",
    ]
    assert f"JSON result: {output}" in text


def test_walk_forward_optuna_reports_each_fold_and_the_aggregate(tmp_path: Path) -> None:
    output = tmp_path / "wf.json"
    text = optimize(
        "--strategy", "ma_crossover", "--param", "slow_period=28", "--param", "size_percent=20",
        *PERIOD[:-1], "2026-01-15", "--method", "optuna", "--trials", "6", "--split",
        "walk-forward", "--folds", "2", "--train-fraction", "0.6", "--workers", "2",
        "--output", str(output),
    )  # fmt: skip

    doc = json.loads(output.read_text())
    assert doc["fixed"] == {"slow_period": 28, "size_percent": 20.0}
    assert list(doc["space"]) == ["fast_period"]
    folds = doc["folds"]
    assert len(folds) == 2
    assert folds[0]["test"]["to"] < folds[1]["test"]["from"]
    for fold in folds:
        assert len(fold["best"]) == 1
        assert fold["best"][0]["params"]["fast_period"] < 28
    assert "Walk-forward: 2 folds, each re-optimised on its window" in text
    assert "Out of sample: mean sharpe" in text
    assert f"compounded return {doc['out_of_sample']['return_percent']:+.2f}%" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metric", "luck"], r"argument --metric: invalid choice: 'luck'"),
        (["--param", "level"], r"--param: expected NAME=VALUE, got 'level'"),
        (["--param", "level=high"], r"--param: level: 'high' is not a number"),
        (["--to", "2026-01-03"], r"--from/--to: the training window has \d+ bars, too few"),
        (["--strategy", "ma_crossover"], r"--max-grid: the grid has 79,200 candidates"),
        (["--workers", "0"], r"--workers: must be at least 1, not 0"),
        # Before the grid is built: a too-large grid would be reported first otherwise.
        (
            ["--strategy", "ma_crossover", "--train-fraction", "1.5"],
            r"--train-fraction: must be between 0 and 1, not 1.5",
        ),
        (["--strategy", "ma_crossover", "--max-grid", "0"], r"--max-grid: must be at least 1"),
        (
            ["--strategy", "ma_crossover", "--split", "walk-forward", "--folds", "0"],
            r"--folds: must be at least 1, not 0",
        ),
        (["--initial-balance", "lots"], r"--initial-balance: 'lots' is not a number"),
    ],
)
def test_bad_input_is_a_command_error_naming_the_option(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        optimize("--strategy", "intel_slider", *PERIOD, *args)
