"""Corpora without a reader: manifests and folder-per-emotion layouts, on real audio.

Each test lays out a small corpus of real clips, cut from ../shared/corpora into a temp
folder and re-labelled, the way a user would bring an in-house corpus.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from emodna.cli import main
from emodna.corpora import load_corpora, read_corpus, survey_corpora
from emodna.custom import read_manifest, write_manifest
from emodna.errors import CorpusError
from tests.helpers import FOLDERS, clips, cut

pytestmark = pytest.mark.corpora


@pytest.fixture
def mixed(tmp_path, real_corpora, corpora_dir):
    """A corpora folder with a shipped corpus (EMODB, a link to the real one), a manifest
    corpus named CREMA-D whose files do not follow CREMA-D's names, a folder-per-emotion
    corpus whose name has a space and a dot, and a folder nobody can read."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "EMODB").symlink_to(corpora_dir / "EMODB")
    rows = []
    for i, u in enumerate(clips(real_corpora, "CASIA", 6)):
        rel = f"clips/{i:03d}.wav"
        cut(u.path, data / "CREMA-D" / rel)
        rows.append(
            {
                "path": rel,
                "emotion": FOLDERS[u.emotion].upper(),
                "speaker": u.speaker,
                "gender": "F",
            }
        )
    pd.DataFrame(rows).to_csv(data / "CREMA-D" / "manifest.csv", index=False)
    for i, u in enumerate(clips(real_corpora, "EMOVO", 6)):
        cut(
            u.path,
            data / "Urdu v1.2" / "Sound Source" / FOLDERS[u.emotion] / f"SM{i % 3}_{i:03d}.flac",
        )
    (data / "notes").mkdir()
    (data / "notes" / "readme.txt").write_text("not audio")
    return data


def test_survey_reads_every_layout_and_names_the_folder_it_cannot(mixed):
    found, skipped = survey_corpora(mixed)
    assert list(found) == ["EMODB", "CREMA-D", "Urdu v1.2"]
    assert [p.name for p, _ in skipped] == ["notes"]
    assert "manifest.csv" in skipped[0][1] and "emotion folders" in skipped[0][1]
    corpora = load_corpora(mixed)
    crema, urdu = corpora["CREMA-D"], corpora["Urdu v1.2"]
    assert len(crema.utterances) == 24 and len(urdu.utterances) == 24
    assert sorted({u.emotion for u in crema.utterances}) == sorted(FOLDERS)
    assert {u.gender for u in crema.utterances} == {"female"}
    assert {u.speaker for u in urdu.utterances} == {""}  # no pattern: unknown speaker
    angry = [u for u in urdu.utterances if u.path.parent.name == "Angry"]
    assert len(angry) == 6 and {u.emotion for u in angry} == {"anger"}
    # case-insensitive names, as for the shipped corpora
    assert list(load_corpora(mixed, names=["crema-d", "urdu v1.2"])) == ["CREMA-D", "Urdu v1.2"]


def test_corpora_command_lists_them_and_writes_the_manifest_it_inferred(mixed, tmp_path, capsys):
    assert (
        main(
            [
                "corpora",
                "--corpora-dir",
                str(mixed),
                "--cache",
                str(tmp_path / "c"),
                "--write-manifest",
                str(tmp_path / "m"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    rows = {
        line.split()[0]: line
        for line in out.splitlines()[1:]
        if line.split() and line.split()[0] in ("EMODB", "CREMA-D", "Urdu")
    }
    assert set(rows) == {"EMODB", "CREMA-D", "Urdu"}
    assert f"not read: {mixed / 'notes'}: " in out
    written = tmp_path / "m" / "Urdu v1.2.csv"
    assert f"wrote {written}" in out
    again = read_manifest("Urdu v1.2", written)
    original = read_corpus("Urdu v1.2", mixed / "Urdu v1.2")
    assert again.utterances == original.utterances  # the inferred manifest reads back the same


def test_manifest_errors_name_the_file_and_the_row(tmp_path, real_corpora):
    src = clips(real_corpora, "CASIA", 1)
    for i, u in enumerate(src):
        cut(u.path, tmp_path / f"{i}.wav", 0.3)
    m = tmp_path / "manifest.csv"

    def write(rows, columns=("path", "emotion", "speaker")):
        pd.DataFrame(rows, columns=list(columns)).to_csv(m, index=False)

    write([("0.wav", "angry")], columns=("path", "emotion"))
    with pytest.raises(
        CorpusError,
        match=rf"^{m}: missing column\(s\) speaker; a manifest has columns path, emotion, speaker",
    ):
        read_manifest("X", m)
    write([("0.wav", "angry", "a"), ("9.wav", "sad", "b")])
    with pytest.raises(
        CorpusError, match=rf"^{m}: row 3: no such file {tmp_path / '9.wav'}; paths are relative"
    ):
        read_manifest("X", m)
    write([("0.wav", "angry", "a"), ("1.wav", "sad", "b"), ("0.wav", "angry", "a")])
    with pytest.raises(CorpusError, match=rf"^{m}: row 2: path '0.wav' is listed 2 times"):
        read_manifest("X", m)
    write([("0.wav", "angry", "a"), ("1.wav", "furious", "b"), ("2.wav", "meh", "c")])
    with pytest.raises(
        CorpusError, match=rf"^{m}: row 3: unknown emotion word\(s\) 'furious', 'meh'; rename"
    ):
        read_manifest("X", m)
    write(
        [
            ("0.wav", "Angry", ""),
            ("1.wav", "happy", "b"),
            ("2.wav", "Neutral", "b"),
            ("3.wav", "sad", "c"),
        ]
    )
    corpus = read_manifest("X", m)
    assert [(u.path.name, u.emotion, u.speaker) for u in corpus.utterances] == [
        ("0.wav", "anger", ""),
        ("1.wav", "happiness", "b"),
        ("2.wav", "neutral", "b"),
        ("3.wav", "sadness", "c"),
    ]


def test_features_of_a_manifest_corpus_take_its_95th_percentile_length(mixed, tmp_path):
    from emodna.features import FeatureSettings, corpus_features

    corpora = load_corpora(mixed, names=["CREMA-D"])
    feats = corpus_features(corpora, FeatureSettings(), tmp_path / "c", workers=1, progress=False)[
        "CREMA-D"
    ]
    durations = [sf.info(u.path).frames for u in corpora["CREMA-D"].utterances]
    assert feats.x.shape[0] == 24 and feats.x.shape[1] == 40
    # every clip is cut to at most 1 s, so the 95th percentile length is 1 s of frames
    assert int(np.percentile(durations, 95)) == 16000
    assert feats.meta["speaker"].nunique() == len(
        {u.speaker for u in corpora["CREMA-D"].utterances}
    )


def test_train_from_a_manifest_corpus_to_a_folder_corpus(mixed, tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--corpora-dir",
                str(mixed),
                "--source",
                "crema-d",
                "--target",
                "Urdu v1.2",
                "--task",
                "arousal",
                "--method",
                "functionals_lr",
                "--cache",
                str(tmp_path / "c"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    printed = captured.out + captured.err
    assert '"source": "CREMA-D", "target": "Urdu v1.2"' in captured.out
    assert (
        "CREMA-D: 24 files used, 0 skipped" in printed
        and "Urdu v1.2: 24 files used, 0 skipped" in printed
    )
    assert any(out.rglob("*.pt"))
    written = tmp_path / "manifests"
    write_manifest(load_corpora(mixed, names=["EMODB"])["EMODB"], written)
    assert (written / "EMODB.csv").exists()


@pytest.mark.slow
def test_a_sweep_over_a_mixed_folder_summarizes_and_predicts(mixed, tmp_path):
    """The whole path on a manifest corpus named CREMA-D and a folder corpus named with a
    space and a dot: a real sweep (local Ray), its summary and exports, and predict."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    space = tmp_path / "mixed.yaml"
    space.write_text(
        "method: emodna\nepochs: 1\nseeds: [0]\n"
        "scenarios:\n  list:\n"
        "    - {source: CREMA-D, target: Urdu v1.2, task: arousal}\n"
        "    - {source: urdu v1.2, target: crema-d, task: arousal}\n"
        "fixed: {batch_size: 16}\n"
        "params:\n  lr: {type: float, low: 0.0003, high: 0.003, log: true}\n"
    )
    out = tmp_path / "sweep"
    env = {"RAY_USAGE_STATS_ENABLED": "0", **__import__("os").environ}
    proc = subprocess.run(
        [
            sys.executable,
            str(root / "sweep" / "run.py"),
            "--corpora-dir",
            str(mixed),
            "--space",
            str(space),
            "--budget",
            "1",
            "--out",
            str(out),
            "--cache",
            str(tmp_path / "c"),
            "--address",
            "local",
            "--num-cpus",
            "2",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=400,
        env=env,
        start_new_session=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = pd.read_parquet(out / "trials.parquet")
    assert sorted(zip(table["source"], table["target"], strict=True)) == [
        ("CREMA-D", "Urdu v1.2"),
        ("Urdu v1.2", "CREMA-D"),
    ]
    assert main(["summarize", str(out)]) == 0
    best = out / "best" / "CREMA-D-Urdu v1.2-arousal.yaml"
    assert best.exists(), sorted(p.name for p in (out / "best").iterdir())
    clip = next((mixed / "Urdu v1.2").rglob("*.flac"))
    assert main(["predict", "--model", str(best), str(clip)]) == 0  # the export records the length


def test_a_corpus_with_one_class_for_a_task_is_refused_by_train_and_skipped_by_the_sweep(
    tmp_path, real_corpora, capsys
):
    """Angry and happy clips are all high arousal: no arousal scenario can use the corpus,
    valence can. Eight clips: a warning that its scores are coarse."""
    from sweep.inputs import read_inputs

    data = tmp_path / "data"
    for i, u in enumerate(
        [u for u in clips(real_corpora, "CASIA", 4) if u.emotion in ("anger", "happiness")]
    ):
        cut(u.path, data / "Loud" / FOLDERS[u.emotion] / f"{i}.wav", 0.5)
    (data / "EMODB").symlink_to(real_corpora["EMODB"].root)
    assert (
        main(
            [
                "train",
                "--corpora-dir",
                str(data),
                "--source",
                "EMODB",
                "--target",
                "Loud",
                "--task",
                "arousal",
                "--method",
                "functionals_lr",
                "--cache",
                str(tmp_path / "c"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert (
        f"Loud ({data / 'Loud'}) has only arousal class high (of low, high); it cannot be used for arousal"
        in err
    )
    space = tmp_path / "s.yaml"
    space.write_text(
        "method: functionals_lr\nepochs: 1\nseeds: [0]\n"
        "scenarios: {corpora: all, tasks: [arousal, valence]}\nparams: {}\n"
    )
    from sweep.run import parse_args

    args = parse_args(["--space", str(space), "--corpora-dir", str(data)])
    _, corpora, scenarios = read_inputs(args)
    assert [(s["source"], s["target"], s["task"]) for s in scenarios] == [
        ("EMODB", "Loud", "valence"),
        ("Loud", "EMODB", "valence"),
    ]
    out = capsys.readouterr().out
    assert (
        "skipping its scenarios: Loud" in out
        and "warning: Loud" in out
        and "has 8 files (< 20)" in out
    )


def test_speaker_pattern_reads_speakers_from_folder_corpus_paths(tmp_path, real_corpora, capsys):
    folder = tmp_path / "corpora" / "Urdu-mini"
    for i, u in enumerate(clips(real_corpora, "EMODB", per_emotion=3)):
        cut(u.path, folder / FOLDERS[u.emotion] / f"spk{i % 3:02d}_{i}.wav", seconds=0.5)
    assert {u.speaker for u in read_corpus("Urdu-mini", folder).utterances} == {""}
    corpus = read_corpus("Urdu-mini", folder, speaker_pattern=r"(spk\d+)_")
    assert sorted({u.speaker for u in corpus.utterances}) == ["spk00", "spk01", "spk02"]
    assert [u.speaker for u in corpus.utterances if u.path.name.startswith("spk01")] == [
        "spk01"
    ] * 4
    with pytest.raises(CorpusError, match=r"--speaker-pattern 'spk\\d\+' has no group"):
        read_corpus("Urdu-mini", folder, speaker_pattern=r"spk\d+")
    args = ["corpora", "--corpora-dir", str(tmp_path / "corpora"), "--speaker-pattern", "(spk"]
    assert main(args) == 2
    assert "not a regular expression" in capsys.readouterr().err


def test_a_corpus_mixing_sample_rates_is_warned_about_naming_an_odd_file(tmp_path, real_corpora):
    from emodna.custom import corpus_warnings

    folder = tmp_path / "Mixed"
    picked = clips(real_corpora, "EMODB", per_emotion=6)
    for i, u in enumerate(picked):
        cut(u.path, folder / FOLDERS[u.emotion] / f"{i}.wav", seconds=0.5)
    y, sr = sf.read(picked[0].path, frames=8000)
    odd = folder / "Angry" / "odd.wav"
    sf.write(odd, y[::2], sr // 2)  # one clip at 8 kHz among 16 kHz ones
    warnings = corpus_warnings(read_corpus("Mixed", folder))
    assert len(warnings) == 1
    assert warnings[0].startswith("Mixed mixes sample rates (16000 Hz: 24 files, 8000 Hz: 1 files;")
    assert str(odd) in warnings[0]
    assert corpus_warnings(read_corpus("EMODB", real_corpora["EMODB"].root)) == []
