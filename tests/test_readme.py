"""The README's "Your first hour", run as written; and every command's --help.

The first-hour block is read from README.md and run line by line from the repo root, with
``../shared/corpora`` replaced by the real corpora folder and ``runs/`` by the folder of the
session's smoke sweep (the ``smoke_sweep`` fixture of conftest.py: the README's sweep line,
run once per session in its own process session and embedded Ray, ``--address local
--num-cpus 2``; the sweep line here checks it is that one). Every command reads the
session's warm feature cache through ``$EMODNA_CACHE``, which the README's commands fall
back to when they get no ``--cache``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from emodna.cli import build_parser
from tests.helpers import ROOT, RUN, emodna_command, tail

README = ROOT / "README.md"
FIRST_HOUR = "## Your first hour"
EMODNA_COMMANDS = ["corpora", "features", "methods", "train", "summarize", "predict"]


def first_hour_commands() -> list[str]:
    """The command lines of the first fenced block under ``## Your first hour``."""
    text = README.read_text()
    assert FIRST_HOUR + "\n" in text, f"README.md has no '{FIRST_HOUR}' section"
    section = text.split(FIRST_HOUR + "\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"^```[^\n]*\n(.*?)^```", section, re.M | re.S)
    assert block, f"no code block under '{FIRST_HOUR}'"
    return [
        ln.strip()
        for ln in block.group(1).splitlines()
        if ln.strip() and not ln.lstrip().startswith("#")
    ]


def command_name(argv: list[str]) -> str:
    """``emodna train``, ``python sweep/run.py``, ``tensorboard``, ``pip``."""
    return " ".join(argv[:2]) if argv[0] in ("emodna", "python") else argv[0]


def test_first_hour_block_has_the_steps_in_order():
    names = [command_name(shlex.split(line, comments=True)) for line in first_hour_commands()]
    assert names == [
        "pip",
        "emodna corpora",
        "python sweep/run.py",
        "tensorboard",
        "emodna summarize",
        "emodna train",
        "emodna predict",
    ], names


def event_dirs(logdir: Path) -> list[Path]:
    return sorted({p.parent for p in logdir.rglob("events.out.tfevents.*")})


@pytest.mark.slow
@pytest.mark.corpora
def test_first_hour_runs_as_written(smoke_sweep, corpora_dir, warm_cache, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs = smoke_sweep.runs
    monkeypatch.setenv("EMODNA_CACHE", str(warm_cache))
    # one torch thread per process: the machine's cores may be busy with other work
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    log = smoke_sweep.log
    seen = []
    for line in first_hour_commands():
        line = line.replace("../shared/corpora", str(corpora_dir)).replace("runs/", f"{runs}/")
        argv = shlex.split(line, comments=True)
        name = command_name(argv)
        seen.append(name)

        if name == "pip":  # the test environment is installed already
            assert argv[:2] == ["pip", "install"] and "-e" in argv, line
            continue

        if name == "tensorboard":  # a server: check it is installed and its logdir is readable
            assert shutil.which("tensorboard"), "the tensorboard command is not on PATH"
            logdir = Path(argv[argv.index("--logdir") + 1])
            dirs = event_dirs(logdir)
            assert logdir / "tensorboard-configs" in dirs, dirs
            tags = set()
            for d in dirs:
                acc = EventAccumulator(str(d), size_guidance={"scalars": 0})
                acc.Reload()
                tags |= set(acc.Tags()["scalars"])
            assert {"target/uar", "loss/total", "config/target_uar_mean"} <= tags, sorted(tags)
            continue

        if name == "python sweep/run.py":  # run once per session by the smoke_sweep fixture
            assert (ROOT / argv[1]).resolve() == RUN, line
            assert argv[2:] == smoke_sweep.argv, (line, smoke_sweep.argv)
            assert smoke_sweep.rc == 0, tail(log)
            continue

        assert argv[0] == "emodna", line
        proc = subprocess.run(
            [*emodna_command(), *argv[1:]],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
        )
        assert proc.returncode == 0, f"{line}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        out = proc.stdout.strip().splitlines()

        if name == "emodna corpora":
            rows = {ln.split()[0]: ln.split() for ln in out[1:]}
            assert {"EMODB", "CASIA"} <= set(rows), proc.stdout

        elif name == "emodna summarize":
            folder = Path(argv[2])
            assert out[0].startswith("#1  config "), proc.stdout
            for path in ("summary.md", "ranking.parquet", "best/overall-arousal.yaml"):
                assert (folder / path).is_file(), path
            # the scenario the next steps use was exported, with its checkpoint
            assert (folder / "best" / "EMODB-CASIA-arousal.pt").is_file()

        elif name == "emodna train":
            final = json.loads(out[-1])
            assert 0.0 <= final["target_war"] <= 1.0, final
            assert (final["source"], final["target"], final["task"]) == (
                "EMODB",
                "CASIA",
                "arousal",
            )
            config = yaml.safe_load(Path(argv[argv.index("--config") + 1]).read_text())
            assert final["epoch"] == config["epochs"]
            assert (Path(argv[argv.index("--out") + 1]) / "checkpoint.pt").is_file()

        elif name == "emodna predict":
            audio = argv[-1]
            assert Path(audio).is_file(), audio
            assert len(out) == 1, proc.stdout
            path, cell = out[0].split("\t")
            assert path == audio
            m = re.fullmatch(r"arousal=(high|low) p=(\d\.\d{3})", cell)
            assert m, out[0]
            assert 0.5 <= float(m.group(2)) <= 1.0  # the more probable of two classes

        else:
            pytest.fail(f"the test does not know how to check {name!r}")
    assert "emodna predict" in seen and "python sweep/run.py" in seen, seen
    # the sweep's progress: a line after each finished trial (checked last, so that the
    # steps after the sweep run even where it is missing)
    progress = [ln for ln in log.read_text().splitlines() if ln.startswith("[sweep] ")]
    assert any("ETA" in ln for ln in progress), (
        f"no [sweep] progress line with an ETA:\n{tail(log)}"
    )


# ---------------------------------------------------------------------------------------
# --help: an example to copy, and a word on every option


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def options_without_help(parser: argparse.ArgumentParser) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}  # only those given help=
            for name, sub in action.choices.items():
                if not helps.get(name):
                    missing.append(name)
                missing += [f"{name} {opt}" for opt in options_without_help(sub)]
        elif not action.help or action.help == argparse.SUPPRESS:
            missing.append("/".join(action.option_strings) or action.dest)
    return missing


def sweep_parser() -> argparse.ArgumentParser:
    """The parser ``python sweep/run.py`` builds, caught as it parses."""
    from sweep import run

    caught = []

    def catch(self, args=None, namespace=None):
        caught.append(self)
        return argparse.Namespace()

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(argparse.ArgumentParser, "parse_args", catch)
        run.parse_args([])
    (parser,) = caught
    return parser


def test_emodna_has_the_commands_the_readme_uses():
    assert sorted(subparsers(build_parser())) == sorted(EMODNA_COMMANDS)


@pytest.mark.parametrize("command", EMODNA_COMMANDS)
def test_emodna_help_shows_an_example(command, capsys):
    from emodna.cli import main

    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    lines = [ln.strip() for ln in capsys.readouterr().out.splitlines()]
    assert any(ln.startswith(f"emodna {command}") for ln in lines), "\n".join(lines)


def test_sweep_help_shows_an_example():
    proc = subprocess.run(
        [sys.executable, str(RUN), "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    lines = [ln.strip() for ln in proc.stdout.splitlines()]
    assert any(ln.startswith("python sweep/run.py --corpora-dir") for ln in lines), proc.stdout


def test_every_emodna_option_has_help():
    missing = options_without_help(build_parser())
    assert not missing, f"options of emodna without a help string: {missing}"


def test_every_sweep_option_has_help():
    missing = options_without_help(sweep_parser())
    assert not missing, f"options of python sweep/run.py without a help string: {missing}"
