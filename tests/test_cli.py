"""The ``emodna`` command line: in-process for the errors and listings, one real ``emodna train``."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from emodna.cli import main
from tests.helpers import emodna_command

# ---------------------------------------------------------------------------------------
# Errors: exit status 2 and one line on stderr that names the problem


def error_line(capsys, argv) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("emodna train: error: ")
    return lines[0]


def test_train_unknown_method(capsys, tmp_path):
    line = error_line(capsys, ["train", "--corpora-dir", str(tmp_path), "--method", "emodnna"])
    assert "unknown method 'emodnna'" in line and "source_only" in line and "emodna methods" in line


def test_train_source_equal_to_target(capsys, tmp_path):
    line = error_line(
        capsys, ["train", "--corpora-dir", str(tmp_path), "--source", "EMODB", "--target", "EMODB"]
    )
    assert "source and target are both EMODB" in line


def test_train_zero_threads(capsys, tmp_path):
    line = error_line(capsys, ["train", "--corpora-dir", str(tmp_path), "--threads", "0"])
    assert line == "emodna train: error: --threads must be at least 1, got 0"


def test_train_on_a_gpu_that_is_not_there_is_one_line_before_any_work(capsys, tmp_path):
    import socket

    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    line = error_line(capsys, ["train", "--corpora-dir", str(tmp_path), "--device", "cuda"])
    assert f"device cuda: torch sees 0 GPU(s) on node {socket.gethostname()}" in line
    assert "use device cpu" in line


def test_train_missing_corpora_dir(capsys, tmp_path):
    missing = tmp_path / "no-such-folder"
    line = error_line(
        capsys, ["train", "--corpora-dir", str(missing), "--source", "EMODB", "--target", "CASIA"]
    )
    assert str(missing) in line


def test_train_without_corpora(capsys, monkeypatch):
    monkeypatch.delenv("EMODNA_CORPORA_DIR", raising=False)
    line = error_line(capsys, ["train", "--source", "EMODB", "--target", "CASIA"])
    assert "no corpora given" in line and "--corpora-dir" in line


def test_train_config_with_a_typo(capsys, tmp_path):
    config = tmp_path / "best.yaml"
    config.write_text(
        yaml.safe_dump({"source": "EMODB", "target": "CASIA", "tau_s": 0.05, "ema_lamda": 0.9})
    )
    line = error_line(capsys, ["train", "--corpora-dir", str(tmp_path), "--config", str(config)])
    assert str(config) in line and "'ema_lamda'" in line and "did you mean 'ema_lambda'" in line


def test_train_config_with_a_wrong_type(capsys, tmp_path):
    config = tmp_path / "best.yaml"
    config.write_text("epochs: many\n")
    line = error_line(capsys, ["train", "--corpora-dir", str(tmp_path), "--config", str(config)])
    assert "epochs must be a int, got 'many'" in line


def test_train_help_shows_an_example(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out
    assert "emodna train --corpora-dir DATA/ --source EMODB --target CASIA" in out
    assert "--config" in out and "--out" in out


def test_methods_command(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("emodna ")
    assert "Emo-DNA" in out and "DANN" in out


# ---------------------------------------------------------------------------------------
# Real corpora


def test_corpora_lists_the_four_corpora(capsys, corpora_dir):
    assert main(["corpora", "--corpora-dir", str(corpora_dir)]) == 0
    expected = {"EMODB": "535", "CASIA": "1200", "EMOVO": "588", "RAVDESS": "1440"}
    lines = capsys.readouterr().out.strip().splitlines()
    rows = {line.split()[0]: line.split() for line in lines[1 : 1 + len(expected)]}  # then notes
    assert set(rows) == set(expected)
    for name, files in expected.items():
        assert rows[name][1] == files, rows[name]
        assert rows[name][-2] == "0"  # nothing skipped
        assert rows[name][-1] in ("decoded", "headers")


@pytest.mark.corpora
@pytest.mark.slow
def test_train_subprocess_end_to_end(corpora_dir, feature_cache, real_features, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            *emodna_command(),
            "train",
            "--corpora-dir",
            str(corpora_dir),
            "--source",
            "EMODB",
            "--target",
            "CASIA",
            "--task",
            "arousal",
            "--method",
            "emodna",
            "--epochs",
            "2",
            "--out",
            str(out),
            "--cache",
            str(feature_cache),
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # progress on stderr, one line per epoch; the final metrics as the last line of stdout
    assert "epoch 1/2" in proc.stderr and "epoch 2/2" in proc.stderr
    final = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {
        "source": "EMODB",
        "target": "CASIA",
        "task": "arousal",
        "method": "emodna",
    }.items() <= final.items()
    assert final["epoch"] == 2 and final["out"] == str(out)
    assert final["threads"] == 1
    for key in (
        "target_war",
        "target_uar",
        "target_f1_pos",
        "target_f1_macro",
        "source_val_acc",
        "threshold",
        "pseudo_fraction",
    ):
        assert 0.0 <= final[key] <= 1.0, key
    assert {
        "loss",
        "loss_emotion",
        "loss_corpus",
        "loss_decouple",
        "loss_mmd",
        "loss_supcon",
    } <= set(final)
    assert (out / "checkpoint.pt").exists()

    # TensorBoard: curves with one point per epoch, and an HParams entry
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = EventAccumulator(str(out))
    events.Reload()
    scalars = events.Tags()["scalars"]
    for tag in (
        "loss/total",
        "loss/supcon",
        "target/uar",
        "target/war",
        "signal/threshold",
        "signal/source_val_acc",
    ):
        assert tag in scalars, tag
    for tag in ("loss/total", "target/uar", "signal/threshold"):
        assert [s.step for s in events.Scalars(tag)] == [1, 2], tag
    assert events.Scalars("target/uar")[-1].value == pytest.approx(final["target_uar"], abs=1e-6)
    hparams = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(hparams["_hparams_/session_start_info"])
    assert start.session_start_info.hparams["method"].string_value == "emodna"
    assert start.session_start_info.hparams["tau_p"].number_value == pytest.approx(0.01)
    assert "_hparams_/experiment" in hparams


@pytest.mark.corpora
def test_train_classical_baseline_with_speaker_normalisation_then_predict_one_speaker(
    corpora_dir, feature_cache, real_features, tmp_path, capsys
):
    """`emodna train --method functionals_lr --normalize speaker --set ...` runs in seconds on
    the real corpora; `emodna predict` on clips of one CASIA speaker takes them as a new speaker."""
    out = tmp_path / "lr"
    code = main(
        [
            "train",
            "--corpora-dir",
            str(corpora_dir),
            "--cache",
            str(feature_cache),
            "--source",
            "emodb",
            "--target",
            "CASIA",
            "--method",
            "functionals_lr",
            "--normalize",
            "speaker",
            "--set",
            "class_balance=loss",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    final = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert final["method"] == "functionals_lr" and final["epoch"] == 1
    assert 0.55 < final["target_uar"] <= 1.0  # well above chance on EMODB -> CASIA arousal
    clips = sorted((corpora_dir / "CASIA" / "liuchanhg").rglob("*.flac"))[:3]
    assert main(["predict", "--json", "--model", str(out), *map(str, clips)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["path"] for r in rows] == [str(c) for c in clips]
    assert all(sum(r["arousal"]["probabilities"].values()) == pytest.approx(1.0) for r in rows)


def test_train_set_must_be_key_value(capsys):
    assert main(["train", "--corpora-dir", ".", "--set", "bn"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--set 'bn': write it as KEY=VALUE" in err


def test_version_and_help_point_to_the_sweep(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip().startswith("emodna (emodna-sweep) ")
    with pytest.raises(SystemExit):
        main(["--help"])
    assert (
        "emodna-sweep --corpora-dir DATA/ --space search_spaces/transfer.yaml"
        in capsys.readouterr().out
    )
