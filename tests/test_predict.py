"""emodna predict: an exported config + checkpoint -> class and probability per audio file."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from emodna.cli import main
from emodna.config import TrainConfig
from emodna.features import FeatureSettings
from emodna.inputs import FeatureSpec, features, normalise
from emodna.labels import CLASSES
from emodna.model import EmoDNA
from emodna.predict import load_model
from emodna.train import Domain, fit
from tests.helpers import cut

LENGTH = 22050  # one second: keeps MFCC extraction quick; recorded in the export's origin


def _domain(rng, n, name, shift):
    y = rng.integers(0, 2, n)
    x = (rng.normal(size=(n, 40, 16)) + shift + 0.8 * y[:, None, None]).astype(np.float32)
    return Domain(x, y.astype(np.int64), name, np.array([f"{name}-spk{i % 4}" for i in range(n)]))


def export_yaml(path, cfg: TrainConfig, checkpoint, origin_features: dict | None = None):
    """A YAML shaped as `emodna summarize` writes it, with the checkpoint beside it."""
    features = {
        "sample_rate": 22050,
        "n_mfcc": 40,
        "corpus": cfg.target,
        "length": LENGTH,
    }
    features.update(origin_features or {})
    data = {**cfg.to_dict(), "origin": {"sweep": "test", "config_id": 0, "features": features}}
    path.write_text("# exported for a test\n" + yaml.safe_dump(data, sort_keys=False))
    if checkpoint is not None:
        shutil.copy(checkpoint, path.with_suffix(".pt"))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One-epoch models for arousal and valence on small synthetic arrays, as fit writes them."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("predict")
    rng = np.random.default_rng(0)
    src, tgt = _domain(rng, 40, "EMODB", 0.0), _domain(rng, 40, "CASIA", 0.3)
    out = {}
    for task in ("arousal", "valence"):
        cfg = TrainConfig(source="EMODB", target="CASIA", task=task, epochs=1, batch_size=16)
        run = root / f"run-{task}"
        fit(cfg, src, tgt, checkpoint_dir=run)
        out[task] = (
            cfg,
            run / "checkpoint.pt",
            export_yaml(root / f"EMODB-CASIA-{task}.yaml", cfg, run / "checkpoint.pt"),
        )
    out["run_dir"] = root / "run-arousal"
    return out


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(1)
    a = root / "noise-16k.wav"
    sf.write(a, (0.1 * rng.normal(size=16000)).astype(np.float32), 16000)  # resampled to 22050
    b = root / "tone-stereo.flac"
    t = np.arange(int(1.5 * 22050)) / 22050
    tone = 0.3 * np.sin(2 * np.pi * 220 * t)
    sf.write(b, np.stack([tone, 0.5 * tone], axis=1), 22050)
    return [a, b]


def parse(line: str) -> tuple[str, dict]:
    path, *cells = line.split("\t")
    out = {}
    for cell in cells:
        left, p = cell.split(" p=")
        task, cls = left.split("=")
        out[task] = (cls, float(p))
    return path, out


def test_predict_prints_class_and_probability_per_file(trained, wavs, capsys):
    _, _, model = trained["arousal"]
    assert main(["predict", "--model", str(model), *map(str, wavs)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for line, wav in zip(lines, wavs, strict=True):
        path, res = parse(line)
        assert path == str(wav)
        cls, p = res["arousal"]
        assert cls in CLASSES["arousal"] and 0.0 <= p <= 1.0
        assert p >= 0.5  # the predicted class is the more probable one


def test_one_model_per_task_and_json(trained, wavs, capsys):
    models = [str(trained[t][2]) for t in ("arousal", "valence")]
    assert main(["predict", "--model", models[0], "--model", models[1], str(wavs[0])]) == 0
    _, res = parse(capsys.readouterr().out.strip())
    assert set(res) == {"arousal", "valence"} and res["valence"][0] in CLASSES["valence"]
    assert (
        main(["predict", "--json", "--model", models[0], "--model", models[1], str(wavs[1])]) == 0
    )
    row = json.loads(capsys.readouterr().out)
    for task in ("arousal", "valence"):
        probs = row[task]["probabilities"]
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
        assert row[task]["probability"] == max(probs.values())


def test_same_task_twice_is_refused(trained, wavs, capsys):
    m = str(trained["arousal"][2])
    assert main(["predict", "--model", m, "--model", m, str(wavs[0])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "one per task" in err


def test_features_as_in_training(trained, wavs):
    loaded = load_model(trained["arousal"][2])
    spec = loaded.features
    assert (spec.settings, spec.length, spec.normalize, spec.corpus) == (
        FeatureSettings(),
        LENGTH,
        "speaker",
        "CASIA",
    )
    assert len(spec.mean) == len(spec.std) == 40  # a typical target speaker's statistics
    x = [clip.x for clip in features(wavs, loaded.features)]
    from emodna.features import fix_length, mfcc, read_audio

    for xi, wav in zip(x, wavs, strict=True):
        assert xi.shape == (40, 1 + LENGTH // 512)
        ref = mfcc(fix_length(read_audio(wav, 22050), LENGTH), FeatureSettings())
        np.testing.assert_array_equal(xi, ref)


def test_wrong_shape_checkpoint_is_one_line_exit_2(trained, wavs, tmp_path, capsys):
    model = str(trained["arousal"][2])
    cfg = trained["arousal"][0]
    other = EmoDNA(n_mfcc=20, n_classes=2)
    bad = tmp_path / "n_mfcc20.pt"
    torch.save(
        {
            "model": other.state_dict(),
            "config": cfg.to_dict(),
            "model_shape": {"n_mfcc": 20, "n_classes": 2},
        },
        bad,
    )
    assert main(["predict", "--model", model, "--checkpoint", str(bad), str(wavs[0])]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert "another shape" in captured.err and "takes 20 features per frame" in captured.err
    # a checkpoint that claims the right shape but holds other weights
    lying = tmp_path / "lying.pt"
    torch.save(
        {
            "model": other.state_dict(),
            "config": cfg.to_dict(),
            "model_shape": {"n_mfcc": 40, "n_classes": 2},
        },
        lying,
    )
    assert main(["predict", "--model", model, "--checkpoint", str(lying), str(wavs[0])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "another shape" in err
    # three classes for a binary task
    three = tmp_path / "three.pt"
    torch.save(
        {
            "model": EmoDNA(n_classes=3).state_dict(),
            "config": cfg.to_dict(),
            "model_shape": {"n_mfcc": 40, "n_classes": 3},
        },
        three,
    )
    assert main(["predict", "--model", model, "--checkpoint", str(three), str(wavs[0])]) == 2
    assert "3 classes" in capsys.readouterr().err
    # not a checkpoint at all
    junk = tmp_path / "junk.pt"
    junk.write_text("not torch")
    assert main(["predict", "--model", model, "--checkpoint", str(junk), str(wavs[0])]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_checkpoint_of_the_other_task_is_refused(trained, wavs, capsys):
    model = str(trained["arousal"][2])
    assert (
        main(
            ["predict", "--model", model, "--checkpoint", str(trained["valence"][1]), str(wavs[0])]
        )
        == 2
    )
    assert "task valence" in capsys.readouterr().err


def test_missing_checkpoint_and_audio(trained, wavs, tmp_path, capsys):
    cfg = trained["arousal"][0]
    lonely = export_yaml(tmp_path / "EMODB-CASIA-arousal.yaml", cfg, None)
    assert main(["predict", "--model", str(lonely), str(wavs[0])]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    assert main(["predict", "--model", str(trained["arousal"][2]), str(tmp_path / "nope.wav")]) == 2
    assert "no such audio file" in capsys.readouterr().err


def test_unreadable_audio_is_reported_and_the_rest_predicted(trained, wavs, tmp_path, capsys):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really")
    assert main(["predict", "--model", str(trained["arousal"][2]), str(broken), str(wavs[0])]) == 2
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 1 and str(wavs[0]) in captured.out
    assert "broken.wav" in captured.err and "cannot decode" in captured.err


def test_run_folder_of_emodna_train(trained, wavs, capsys):
    """An `emodna train` folder: the checkpoint carries the config; the paper's length of the target."""
    loaded = load_model(trained["run_dir"])
    assert loaded.features.length == 88000 and loaded.task == "arousal"
    assert main(["predict", "--model", str(trained["run_dir"]), str(wavs[0])]) == 0
    assert "arousal=" in capsys.readouterr().out


def _trained_with(root, **fields):
    """A one-epoch model trained with these TrainConfig fields, exported as a YAML + .pt."""
    rng = np.random.default_rng(0)
    src, tgt = _domain(rng, 40, "EMODB", 0.0), _domain(rng, 40, "CASIA", 3.0)
    cfg = TrainConfig(source="EMODB", target="CASIA", epochs=1, batch_size=16, **fields)
    run = root / "run"
    fit(cfg, src, tgt, checkpoint_dir=run)
    return cfg, tgt, export_yaml(root / "model.yaml", cfg, run / "checkpoint.pt")


def _by_hand(loaded, x_raw, mean, std):
    """The model's probabilities for raw MFCCs [F, T] normalised with (mean, std)."""
    x = ((x_raw - mean[:, None]) / (std[:, None] + 1e-8)).astype(np.float32)
    with torch.no_grad():
        return torch.softmax(loaded.model.predict_logits(torch.from_numpy(x[None])), dim=1)[
            0
        ].numpy()


def test_corpus_normalisation_uses_the_target_statistics_from_the_checkpoint(
    wavs, tmp_path, capsys
):
    cfg, tgt, model = _trained_with(tmp_path, normalize="corpus")
    state = torch.load(model.with_suffix(".pt"), weights_only=True)
    assert state["norm"]["mode"] == "corpus"
    np.testing.assert_allclose(
        state["norm"]["mean"].numpy(), tgt.x.mean(axis=(0, 2)), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        state["norm"]["std"].numpy(), tgt.x.std(axis=(0, 2)), rtol=1e-4, atol=1e-5
    )
    loaded = load_model(model)
    raw = features([wavs[0]], loaded.features)[0].x
    expected = _by_hand(loaded, raw, state["norm"]["mean"].numpy(), state["norm"]["std"].numpy())
    assert main(["predict", "--json", "--model", str(model), str(wavs[0])]) == 0
    got = json.loads(capsys.readouterr().out)["arousal"]["probabilities"]
    assert [got[c] for c in CLASSES["arousal"]] == pytest.approx(expected.tolist(), abs=1e-5)

    # a checkpoint without the statistics: refused, unless --normalize-self
    del state["norm"]["mean"], state["norm"]["std"]
    torch.save(state, tmp_path / "stats-removed.pt")
    no_stats = export_yaml(tmp_path / "nostats.yaml", cfg, tmp_path / "stats-removed.pt")
    assert main(["predict", "--model", str(no_stats), str(wavs[0])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--normalize-self" in err and "CASIA" in err
    assert main(["predict", "--normalize-self", "--model", str(no_stats), *map(str, wavs)]) == 0
    assert capsys.readouterr().out.count("\n") == 2


def test_normalize_self_takes_the_files_as_one_new_speaker(wavs, tmp_path, capsys):
    _, _, model = _trained_with(tmp_path, normalize="speaker", bn="adabn")
    loaded = load_model(model)
    raws = [clip.x for clip in features(wavs, loaded.features)]
    # statistics over both files' frames (different lengths are fine: they are cut to one length)
    stack = np.stack(raws).astype(np.float64)
    mean, std = stack.mean(axis=(0, 2)), stack.std(axis=(0, 2))
    self_ = ["predict", "--normalize-self", "--json", "--model", str(model)]
    assert main([*self_, *map(str, wavs)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    for line, raw in zip(lines, raws, strict=True):
        got = json.loads(line)["arousal"]["probabilities"]
        assert [got[c] for c in CLASSES["arousal"]] == pytest.approx(
            _by_hand(loaded, raw, mean, std).tolist(), abs=1e-5
        )
    # one file of a new speaker works too: its own frames' statistics
    assert main(["predict", "--normalize-self", "--model", str(model), str(wavs[0])]) == 0
    assert capsys.readouterr().out.count("\n") == 1
    # a folder of the speaker's files is the same as the files
    assert main([*self_, str(wavs[0].parent)]) == 0
    assert [json.loads(x)["path"] for x in capsys.readouterr().out.strip().splitlines()] == sorted(
        map(str, wavs)
    )


def test_classical_baseline_exports_and_predicts_like_sklearn(wavs, tmp_path, capsys):
    """functionals_lr: the checkpoint holds LogisticRegression's weights and each corpus's
    functional statistics; predict on the target's audio standardises by the target's."""
    cfg, tgt, model = _trained_with(tmp_path, method="functionals_lr", normalize="none")
    loaded = load_model(model)
    raw = features([wavs[1]], loaded.features)[0].x
    f = np.concatenate([raw.mean(axis=1), raw.std(axis=1)]).astype(np.float64)
    ft = np.concatenate([tgt.x.mean(axis=2), tgt.x.std(axis=2)], axis=1).astype(np.float64)
    z = (f - ft.mean(0)) / ft.std(0)
    w = loaded.model.linear.weight.detach().double().numpy()[0]
    b = float(loaded.model.linear.bias.detach()[0])
    p_high = 1 / (1 + np.exp(-(z @ w + b)))
    assert main(["predict", "--json", "--model", str(model), str(wavs[1])]) == 0
    got = json.loads(capsys.readouterr().out)["arousal"]["probabilities"]
    assert got["high"] == pytest.approx(p_high, abs=1e-4)


# ---------------------------------------------------------------------------------------
# Real clips: a prediction is a function of the clip, the model and a declared grouping

CLIP = "03a01Wa.flac"  # EMODB speaker 03, anger: high arousal, loud
MATES = ["03a01Nc.flac", "03a02Ta.flac", "03a04Lc.flac"]  # speaker 03: neutral, sad, bored
OTHERS = ["08a01Na.flac", "08a02Ab.flac"]  # speaker 08
EMODB_SPEAKER = r"/(\d\d)[ab]\d\d\w+\.flac$"


@pytest.fixture(scope="module")
def real(corpora_dir, tmp_path_factory):
    """One-epoch models, one per ``normalize`` mode, trained on the one-second MFCCs of 24
    EMODB clips (source) and 24 CASIA clips of its four speakers (target)."""
    from emodna.corpora import load_corpora
    from emodna.labels import encode

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("real")
    corpora = load_corpora(corpora_dir, names=["EMODB", "CASIA"])
    spec = FeatureSpec(FeatureSettings(), LENGTH)
    domains = {}
    for name, corpus in corpora.items():
        utts = corpus.utterances[:: len(corpus.utterances) // 24][:24]
        x = np.stack([clip.x for clip in features([u.path for u in utts], spec)])
        y = encode([u.emotion for u in utts], "arousal")
        domains[name] = Domain(x, y, name, np.array([u.speaker for u in utts]))
    assert len(set(domains["CASIA"].speaker)) == 4
    models = {}
    for mode in ("none", "corpus", "speaker"):
        cfg = TrainConfig(
            source="EMODB", target="CASIA", epochs=1, batch_size=8, normalize=mode, bn="adabn"
        )
        fit(cfg, domains["EMODB"], domains["CASIA"], checkpoint_dir=root / mode)
        models[mode] = export_yaml(root / f"{mode}.yaml", cfg, root / mode / "checkpoint.pt")
    wav = corpora_dir / "EMODB" / "wav"
    return {"models": models, "target": domains["CASIA"], "wav": wav, "root": root}


def _probabilities(model, paths, **kwargs) -> dict[str, list[float]]:
    """``emodna.predict.run`` on ``paths``: path -> [p(low), p(high)], with its printed lines."""
    import io

    from emodna.predict import run

    out, err = io.StringIO(), io.StringIO()
    assert run([model], paths, as_json=True, out=out, err=err, **kwargs) == 0, err.getvalue()
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    return {r["path"]: [r["arousal"]["probabilities"][c] for c in CLASSES["arousal"]] for r in rows}


@pytest.mark.parametrize("mode", ["none", "corpus", "speaker"])
def test_a_clip_gets_the_same_probability_alone_or_among_other_files(real, mode, capsys):
    """The issue's case: the anger clip alone, then with three clips of its speaker (and two
    of another): the same probability, through the command as a user types it."""
    model, wav = str(real["models"][mode]), real["wav"]
    clip = str(wav / CLIP)
    assert main(["predict", "--json", "--model", model, clip]) == 0
    alone = json.loads(capsys.readouterr().out)["arousal"]["probabilities"]
    crowd = [clip, *(str(wav / f) for f in MATES + OTHERS)]
    assert main(["predict", "--json", "--model", model, *crowd]) == 0
    among = json.loads(capsys.readouterr().out.splitlines()[0])
    assert among["path"] == clip
    assert among["arousal"]["probabilities"] == pytest.approx(alone, abs=1e-6)


def test_speaker_model_stores_a_typical_target_speaker_and_keeps_a_lone_clips_level(real):
    """Without a declared speaker, a ``speaker`` model applies the target's stored statistics:
    the mean of its speakers' means and the root mean of their variances (clip-weighted). A
    clip's own statistics would set each coefficient's mean over its frames to 0: its level,
    the cue arousal rests on, gone."""

    tgt = real["target"]
    means, variances, counts = [], [], []
    for s in sorted(set(tgt.speaker)):
        x = tgt.x[tgt.speaker == s].astype(np.float64)
        means.append(x.mean(axis=(0, 2)))
        variances.append(x.var(axis=(0, 2)))
        counts.append(len(x))
    w = np.asarray(counts, dtype=np.float64)[:, None] / sum(counts)
    mean, std = (w * np.asarray(means)).sum(0), np.sqrt((w * np.asarray(variances)).sum(0))
    loaded = load_model(real["models"]["speaker"])
    np.testing.assert_allclose(loaded.features.mean, mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(loaded.features.std, std, rtol=1e-6, atol=1e-6)

    clip = features([real["wav"] / CLIP], loaded.features)[0]
    raw = clip.x
    (x,) = normalise([clip], loaded.features, "model", False)
    np.testing.assert_allclose(x, (raw - mean[:, None]) / (std[:, None] + 1e-8), atol=1e-4)
    assert abs(x[0].mean()) > 0.5  # c0 keeps the loud clip's level
    (own,) = normalise([clip], loaded.features, "model", True)  # --normalize-self, one clip
    assert abs(own[0].mean()) < 1e-5


def test_a_short_clips_own_statistics_leave_out_its_zero_padding(real, tmp_path):
    """Half a second of a real clip, padded to the model's one second: its real frames are
    those centred in its audio, and statistics of its own (--normalize-self, or a declared
    speaker group) cover them alone, as in training: its real frames come out with mean 0 and
    std 1 per coefficient. Over every frame, the padding's silence would leave them far
    above 0 in c0."""
    short = tmp_path / "03a01Wa-half.wav"
    cut(real["wav"] / CLIP, short, seconds=0.5)
    loaded = load_model(real["models"]["speaker"])
    (clip,) = features([short], loaded.features)
    # 0.5 s = 11025 samples at 22050 Hz, centred in 22050 from sample 5512 to 16537;
    # frames centred at 512 t in there: t = 11 .. 32 of 44
    assert clip.frames == (11, 33) and clip.x.shape[1] == 44
    for own in (
        normalise([clip], loaded.features, "model", True)[0],
        normalise([clip], loaded.features, "model", False, ["spk"])[0],
    ):
        np.testing.assert_allclose(own[:, 11:33].mean(axis=1), 0, atol=1e-4)
        np.testing.assert_allclose(own[:, 11:33].std(axis=1), 1, atol=1e-3)
        assert not own[:, :11].any() and not own[:, 33:].any()  # padding: the normalised mean
    everything = (clip.x[0] - clip.x[0].mean()) / clip.x[0].std()
    assert everything[11:33].mean() > 0.5  # the old rule: silence pulled the mean down


def test_a_declared_speaker_group_is_normalised_by_its_own_files(real):
    """--speaker-pattern: each speaker's files by their statistics, whatever else is given;
    --speaker NAME on the same files is the same group; --speakers FILE.csv likewise."""
    model, wav = real["models"]["speaker"], real["wav"]
    group = [wav / f for f in [CLIP, *MATES]]
    others = [wav / f for f in OTHERS]
    alone = _probabilities(model, group, speaker_pattern=EMODB_SPEAKER)
    mixed = _probabilities(model, [*others, *group], speaker_pattern=EMODB_SPEAKER)
    for p in map(str, group):
        assert mixed[p] == pytest.approx(alone[p], abs=1e-6)
    named = _probabilities(model, group, speaker="03")
    table = real["root"] / "speakers.csv"
    table.write_text("path,speaker\n" + "".join(f"{p},spk03\n" for p in group))
    listed = _probabilities(model, group, speakers=table)
    for p in map(str, group):
        assert named[p] == pytest.approx(alone[p], abs=1e-6)
        assert listed[p] == pytest.approx(alone[p], abs=1e-6)
    # by hand: the four files' statistics over all their frames
    loaded = load_model(model)
    raws = [clip.x for clip in features(group, loaded.features)]
    stack = np.stack(raws).astype(np.float64)
    expected = _by_hand(loaded, raws[0], stack.mean(axis=(0, 2)), stack.std(axis=(0, 2)))
    assert alone[str(group[0])] == pytest.approx(expected.tolist(), abs=1e-5)


def test_a_grouping_that_does_not_place_a_file_is_one_line_naming_it(real, tmp_path):
    import io

    from emodna.errors import ConfigError
    from emodna.predict import run

    model, wav = real["models"]["speaker"], real["wav"]
    stray = tmp_path / "clip.flac"
    shutil.copy(wav / CLIP, stray)
    with pytest.raises(ConfigError, match=r"clip\.flac: --speaker-pattern .* finds no speaker"):
        run([model], [wav / CLIP, stray], speaker_pattern=EMODB_SPEAKER, out=io.StringIO())
    table = tmp_path / "speakers.csv"
    table.write_text(f"path,speaker\n{wav / CLIP},03\n")
    with pytest.raises(ConfigError, match=r"clip\.flac: not in the speaker table"):
        run([model], [wav / CLIP, stray], speakers=table, out=io.StringIO())
    with pytest.raises(ConfigError, match="give one way"):
        run([model], [stray], speaker="a", speaker_pattern="(x)", out=io.StringIO())
    # one file for a declared speaker: predicted, with a warning that it loses its level
    err = io.StringIO()
    assert run([model], [stray], speaker="a", out=io.StringIO(), err=err) == 0
    assert err.getvalue().count("\n") == 1 and "speaker a has one file" in err.getvalue()


def test_speaker_checkpoint_without_statistics_says_what_to_pass(real, tmp_path, capsys):
    """A checkpoint from before the statistics were stored: one line naming the options."""
    model = real["models"]["speaker"]
    state = torch.load(model.with_suffix(".pt"), weights_only=True)
    state["norm"] = {"mode": "speaker"}
    torch.save(state, tmp_path / "stripped.pt")
    cfg = TrainConfig.from_yaml(model)
    old = export_yaml(tmp_path / "old.yaml", cfg, tmp_path / "stripped.pt")
    clip = str(real["wav"] / CLIP)
    assert main(["predict", "--model", str(old), clip]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "old.yaml" in err and "CASIA" in err
    assert "--speaker NAME" in err and "--normalize-self" in err
    assert main(["predict", "--normalize-self", "--model", str(old), clip]) == 0
    assert _probabilities(old, [clip], speaker="03")
