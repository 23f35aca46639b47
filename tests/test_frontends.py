"""Feature front-ends: MFCC (the paper's), log-Mel, openSMILE's eGeMAPS per frame and per clip,
checked against librosa and openSMILE run directly on real clips; and the front-end as a
config field that training, the sweep's feature sets and predict honour."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emodna.config import TrainConfig
from emodna.errors import ConfigError, FeatureError
from emodna.features import (
    EGEMAPS_FUNCTIONALS,
    EGEMAPS_LLD,
    FeatureSettings,
    build_features,
    extract,
    fix_length,
    load_features,
    read_audio,
)
from sweep.space import parse_space
from tests.helpers import FOLDERS, clips, cut, write_tone


@pytest.fixture(scope="module")
def clip(corpora_dir):
    """One real EMODB clip (16 kHz FLAC)."""
    return sorted((corpora_dir / "EMODB").rglob("*.flac"))[0]


@pytest.mark.corpora
def test_egemaps_functionals_equal_opensmile_on_the_file(clip):
    import opensmile

    settings = FeatureSettings(sample_rate=16000, frontend="egemaps")  # the file's own rate
    ours = extract(read_audio(clip, 16000), settings, length=1)  # functionals: the clip as it is
    smile = opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02,
        feature_level=opensmile.FeatureLevel.Functionals,
    )
    direct = smile.process_file(str(clip)).to_numpy(dtype=np.float32)[0]
    assert ours.shape == (EGEMAPS_FUNCTIONALS, 1) == (88, 1)
    np.testing.assert_allclose(ours[:, 0], direct, rtol=1e-5, atol=1e-5)


@pytest.mark.corpora
def test_egemaps_lld_are_opensmile_descriptors_of_the_centred_clip(clip):
    import opensmile

    settings = FeatureSettings(sample_rate=16000, frontend="egemaps_lld")
    length = 32000  # 2 s
    y = read_audio(clip, 16000)
    ours = extract(y, settings, length)
    smile = opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02,
        feature_level=opensmile.FeatureLevel.LowLevelDescriptors,
    )
    direct = smile.process_signal(fix_length(y, length), 16000).to_numpy(dtype=np.float32).T
    assert ours.shape == (EGEMAPS_LLD, 196)
    assert abs(settings.frames(length) - 196) <= 1  # the plan's estimate
    np.testing.assert_allclose(ours, direct, rtol=1e-5, atol=1e-5)


@pytest.mark.corpora
def test_logmel_is_librosa_db_mel_of_the_centred_clip(clip):
    import librosa

    settings = FeatureSettings(frontend="logmel", n_mels=48)
    length = 22050
    y = read_audio(clip, 22050)
    ours = extract(y, settings, length)
    mel = librosa.feature.melspectrogram(y=fix_length(y, length), sr=22050, n_mels=48)
    assert ours.shape == (48, settings.frames(length)) == (48, 1 + 22050 // 512)
    np.testing.assert_allclose(ours, librosa.power_to_db(mel), rtol=1e-5, atol=1e-4)


def test_each_front_end_has_its_own_cache_file_and_channel_count(tmp_path):
    from emodna.corpora import read_corpus

    root = tmp_path / "EMODB"
    for i, name in enumerate(["03a01Wa", "03a01Fa", "08a02Tb", "10b01Nc"]):
        write_tone(root / "wav" / f"{name}.wav", seconds=0.5 + 0.1 * i, freq=200 + 50 * i)
    corpus = read_corpus("EMODB", root)
    shapes, paths = {}, set()
    for frontend in ("mfcc", "logmel", "egemaps_lld", "egemaps"):
        settings = FeatureSettings(frontend=frontend, lengths={"EMODB": 11025})
        result = build_features(corpus, settings, tmp_path / "cache", workers=1, progress=False)
        paths.add(result.path)
        x = load_features(result.path).x
        assert x.shape[1] == settings.channels
        shapes[frontend] = x.shape
    assert len(paths) == 4  # the front-end is in the cache key
    assert shapes == {
        "mfcc": (4, 40, 22),
        "logmel": (4, 64, 22),
        "egemaps_lld": (4, 25, 45),  # 0.5 s at a 10 ms hop, 60 ms windows unpadded
        "egemaps": (4, 88, 1),
    }
    with pytest.raises(FeatureError, match="unknown front-end 'mel'; use one of mfcc, logmel"):
        FeatureSettings(frontend="mel")


def test_feature_set_of_a_config_and_its_checks():
    assert TrainConfig().feature_set == "mfcc"
    assert TrainConfig(frontend="logmel").feature_set == "logmel"
    lr = TrainConfig(method="functionals_lr", functionals="egemaps")
    assert lr.feature_set == "egemaps"
    # deep methods ignore `functionals`: they read the frame-level front-end
    assert TrainConfig(method="emodna", functionals="egemaps").feature_set == "mfcc"
    with pytest.raises(
        ConfigError, match="frontend 'egemaps' is not one of mfcc, logmel, egemaps_lld"
    ):
        TrainConfig.from_dict({"frontend": "egemaps"})


def test_a_space_searching_front_ends_names_every_feature_set_it_reads():
    space = parse_space(
        """
method: emodna
params:
  frontend: {type: categorical, choices: [mfcc, egemaps_lld]}
""",
        "fe.yaml",
    )
    assert space.feature_sets() == ["mfcc", "egemaps_lld"]
    mixed = parse_space(
        """
params:
  method: {type: categorical, choices: [emodna, functionals_lr]}
  functionals: {type: categorical, choices: [stats, egemaps]}
fixed:
  frontend: logmel
""",
        "mixed.yaml",
    )
    assert mixed.feature_sets() == ["logmel", "egemaps"]
    assert parse_space("method: emodna\n", "plain.yaml").feature_sets() == ["mfcc"]


@pytest.mark.corpora
def test_train_on_egemaps_functionals_then_predict_from_the_export(tmp_path, real_corpora, capsys):
    """`emodna train --method functionals_lr --set functionals=egemaps`, then `emodna predict`
    with the checkpoint alone: it recomputes openSMILE's functionals for the new clips."""
    from emodna.cli import main

    corpora = tmp_path / "corpora"
    for name in ("EMODB", "CASIA"):  # small emotion-folder copies of two real corpora
        for i, u in enumerate(clips(real_corpora, name, per_emotion=8)):
            cut(u.path, corpora / f"{name}-mini" / FOLDERS[u.emotion] / f"{i}.wav", seconds=1.5)
    out = tmp_path / "lr"
    code = main(
        [
            "train", "--corpora-dir", str(corpora), "--cache", str(tmp_path / "cache"),
            "--workers", "1", "--source", "EMODB-mini", "--target", "CASIA-mini",
            "--method", "functionals_lr", "--set", "functionals=egemaps", "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    final = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert final["method"] == "functionals_lr" and 0.0 <= final["target_uar"] <= 1.0
    cached = sorted(p.name.split("-")[0] for p in (tmp_path / "cache").glob("*.parquet"))
    assert cached == ["CASIA", "EMODB"]  # one egemaps file per corpus
    assert load_features(next((tmp_path / "cache").glob("*.parquet"))).x.shape[1:] == (88, 1)

    new = sorted((corpora / "CASIA-mini").rglob("*.wav"))[:3]
    assert main(["predict", "--json", "--model", str(out), *map(str, new)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["path"] for r in rows] == [str(p) for p in new]
    assert all(sum(r["arousal"]["probabilities"].values()) == pytest.approx(1.0) for r in rows)


@pytest.mark.slow
@pytest.mark.corpora
def test_a_sweep_searching_the_front_end_reports_each(tmp_path, corpora_dir, warm_cache):
    """The front-end as a searched choice, end to end: each feature set is extracted and put
    into the object store once, trials read theirs, the summary has a per-front-end table."""
    from sweep.summarize import summarize
    from tests.helpers import run_sweep, tail

    space = tmp_path / "fe.yaml"
    space.write_text(
        "method: emodna\nepochs: 1\nseeds: [0]\nsampler: grid\n"
        "scenarios:\n  list:\n    - {source: EMODB, target: CASIA, task: arousal}\n"
        "params:\n  frontend: {type: categorical, choices: [mfcc, egemaps_lld]}\n"
    )
    out, log = tmp_path / "fe", tmp_path / "fe.log"
    argv = ["--corpora-dir", corpora_dir, "--cache", warm_cache, "--space", space]
    assert run_sweep(log, *argv, "--budget", 2, "--out", out, timeout=900) == 0, tail(log)
    assert "features (mfcc, egemaps_lld) in the object store" in log.read_text()
    summarize(out, plots=False)
    report = (out / "summary.md").read_text()
    section = report.split("## By front-end", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("| ") and "configs" not in ln]
    assert sorted(r.split("|")[1].strip() for r in rows) == ["egemaps_lld", "mfcc"]
