"""The shared table writer and the paper's Tables 2 and 3 (sweep.markdown, sweep.paper_table),
on runs small enough to work out by hand."""

from __future__ import annotations

import pandas as pd

from sweep.markdown import frame_table, md_table, pm
from sweep.paper_table import paper_cells, paper_table


def runs() -> pd.DataFrame:
    # config 0: EMODB -> CASIA and EMODB -> EMOVO, seeds 0 and 1; config 1: EMODB -> CASIA only
    rows = [
        # config, source, target, seed, WAR, F1 pos
        (0, "EMODB", "CASIA", 0, 0.60, 0.50),
        (0, "EMODB", "CASIA", 1, 0.70, 0.70),
        (0, "EMODB", "EMOVO", 0, 0.80, 0.60),
        (0, "EMODB", "EMOVO", 1, 0.70, 0.60),
        (1, "EMODB", "CASIA", 0, 0.50, 0.40),
        (0, "CASIA", "EMODB", 0, 0.90, 0.80),
    ]
    cols = ["config_id", "source", "target", "seed", "target_war", "target_f1_pos"]
    return pd.DataFrame(rows, columns=cols).assign(task="arousal")


def test_a_cell_is_the_mean_over_scenarios_and_the_std_over_seeds_of_its_mean():
    cells = paper_cells(runs(), "arousal", [("cfg 0", 0), ("cfg 1", 1)])
    assert list(cells.index) == ["CASIA", "EMODB", "Average"]
    # EMODB, WAR: scenario means 0.65 and 0.75 -> 70.0; seed means (0.6 + 0.8) / 2 = 0.7 and
    # (0.7 + 0.7) / 2 = 0.7 -> std 0.0 (each scenario's own std over seeds is 7.1: not that)
    assert cells.loc["EMODB", ("cfg 0", "WAR")] == "70.0 ± 0.0"
    # F1: scenario means 0.6 and 0.6; seed means 0.55 and 0.65 -> sample std 0.0707
    assert cells.loc["EMODB", ("cfg 0", "F1 pos")] == "60.0 ± 7.1"
    # one seed on CASIA -> EMODB: no ±
    assert cells.loc["CASIA", ("cfg 0", "WAR")] == "90.0"
    # Average, WAR: scenario means 0.65, 0.75, 0.90 -> 76.7; seed means 0.7667 and 0.70
    # -> std 0.0471
    assert cells.loc["Average", ("cfg 0", "WAR")] == "76.7 ± 4.7"
    # config 1 has one of EMODB's two scenarios (*), none of CASIA's (–)
    assert cells.loc["EMODB", ("cfg 1", "WAR")] == "50.0*"
    assert cells.loc["CASIA", ("cfg 1", "F1 pos")] == "–"
    assert cells.loc["Average", ("cfg 1", "F1 pos")] == "40.0*"


def test_the_summary_layout_is_one_column_per_config_and_score():
    table = paper_table(runs(), "arousal", [("cfg 0", 0)])
    # Average, F1: scenario means 0.6, 0.6, 0.8 -> 66.7; seed means (0.5 + 0.6 + 0.8) / 3 and
    # (0.7 + 0.6) / 2 = 0.6333 and 0.65 -> std 0.0167 / sqrt(2) = 0.0118
    assert table.splitlines()[:2] == ["| source | cfg 0 WAR | cfg 0 F1 pos |", "|---|---|---|"]
    assert table.splitlines()[-1] == "| **Average** | 76.7 ± 4.7 | 66.7 ± 1.2 |"
    # a task without runs: only the Average row, empty
    assert paper_table(runs(), "valence", [("cfg 0", 0)]).splitlines()[2:] == [
        "| **Average** | – | – |"
    ]


def test_one_pipe_table_writer_for_lists_and_frames():
    assert md_table(["a", "b"], [[1, "x"]]) == "| a | b |\n|---|---|\n| 1 | x |"
    frame = pd.DataFrame({"b": ["x", None]}, index=pd.Index([1, 2], name="a"))
    assert frame_table(frame) == "| a | b |\n|---|---|\n| 1 | x |\n| 2 |  |"
    assert (pm(0.5, None), pm(None, 0.1), pm(0.5, 0.02)) == ("50.0", "–", "50.0 ± 2.0")
