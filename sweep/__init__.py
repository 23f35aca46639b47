"""Ray Tune + Optuna sweeps over emodna configs and scenarios (see README, "Sweeps").

A sweep folder ``runs/NAME/`` holds these files, written by ``sweep/run.py`` and read by
``sweep/summarize.py`` (which needs neither Ray nor a finished sweep):
"""

TRIALS = "trials.parquet"  # one row per finished trial, rewritten atomically as each one ends
SETTINGS = "sweep.json"  # the driver's arguments of the first run, reused by --resume
SPACE = "space.yaml"  # a copy of the space file the sweep started with, used by --resume
