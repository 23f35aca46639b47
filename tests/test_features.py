"""The MFCC feature store: padding, decoding, the Parquet cache, bad files, real corpora."""

from __future__ import annotations

import os

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from emodna.corpora import read_corpus
from emodna.errors import FeatureError
from emodna.features import (
    FeatureSettings,
    build_features,
    fix_length,
    load_features,
    read_audio,
)
from tests.helpers import write_tone


@pytest.fixture
def tiny_emodb(tmp_path):
    """An EMODB-shaped tree with four real (generated) clips of different lengths."""
    root = tmp_path / "EMODB"
    for i, (name, secs) in enumerate(
        [("03a01Wa", 0.4), ("03a01Fa", 0.7), ("08a02Tb", 0.5), ("10b01Nc", 0.3)]
    ):
        write_tone(root / "wav" / f"{name}.wav", seconds=secs, freq=200 + 50 * i)
    return root


def test_fix_length_pads_and_cuts_at_both_ends():
    y = np.arange(1, 6, dtype=np.float32)  # [1 2 3 4 5]
    assert fix_length(y, 9).tolist() == [0, 0, 1, 2, 3, 4, 5, 0, 0]
    assert fix_length(y, 8).tolist() == [0, 1, 2, 3, 4, 5, 0, 0]  # odd remainder goes to the end
    assert fix_length(y, 3).tolist() == [2, 3, 4]
    assert fix_length(y, 2).tolist() == [2, 3]
    assert fix_length(y, 5).tolist() == [1, 2, 3, 4, 5]


def test_read_audio_resamples_and_downmixes(tmp_path):
    write_tone(tmp_path / "hi.wav", seconds=1.0, sr=96000, channels=2)
    y = read_audio(tmp_path / "hi.wav", 22050)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 22050) <= 1
    # a 220 Hz tone keeps its frequency through the resampler
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * 22050 / len(y) - 220) < 2


def test_read_audio_names_the_file_for_empty_and_truncated(tmp_path):
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0), 16000)
    with pytest.raises(FeatureError, match="empty.wav.*no samples"):
        read_audio(empty, 22050)
    write_tone(tmp_path / "ok.flac", seconds=1.0)
    truncated = tmp_path / "cut.flac"
    truncated.write_bytes((tmp_path / "ok.flac").read_bytes()[:60])
    with pytest.raises(FeatureError, match="cut.flac.*cannot decode"):
        read_audio(truncated, 22050)


def test_build_writes_one_parquet_with_fixed_shape_tensor(tiny_emodb, tmp_path):
    corpus = read_corpus("EMODB", tiny_emodb)
    settings = FeatureSettings(lengths={"EMODB": 11025})
    result = build_features(corpus, settings, tmp_path / "cache", workers=1, progress=False)
    assert not result.cache_hit and result.rows == 4 and result.bad_files == []
    assert result.path.parent == tmp_path / "cache" and result.path.name.startswith("EMODB-")
    feats = load_features(result.path)
    # 11025 samples -> 1 + 11025 // 512 = 22 frames
    assert feats.x.shape == (4, 40, 22) and feats.x.dtype == np.float32
    assert not feats.x.flags.writeable  # a view of Arrow's buffer, not a copy
    assert feats.corpus == "EMODB"
    assert list(feats.meta.columns) == [
        "path",
        "label",
        "arousal",
        "valence",
        "speaker",
        "gender",
        "duration",
        "frame_start",
        "frame_stop",
    ]
    row = feats.meta.set_index(feats.meta["path"].map(lambda p: os.path.basename(p))).loc[
        "03a01Wa.wav"
    ]
    assert (row["label"], row["arousal"], row["valence"]) == ("anger", "high", "negative")
    assert row["speaker"] == "03" and row["gender"] == "male"
    assert row["duration"] == pytest.approx(0.4, abs=1e-3)
    # its real frames: 0.4 s at 22050 Hz = 8820 samples, centred in 11025 from sample
    # (11025 - 8820) // 2 = 1102 to 9922; frames centred at 512 t in there: t = 3 .. 19
    assert (row["frame_start"], row["frame_stop"]) == (3, 20)
    assert feats.frames().shape == (4, 2)
    assert feats.labels("arousal").tolist() == [
        {"anger": 1, "happiness": 1, "sadness": 0, "neutral": 0}[lab] for lab in feats.meta["label"]
    ]
    schema = pq.read_schema(result.path)
    assert "fixed_shape_tensor" in str(schema.field("x").type)
    assert not list((tmp_path / "cache").glob(".*tmp"))  # nothing half-written left over


def test_features_match_librosa_on_the_centred_clip(tiny_emodb, tmp_path):
    import librosa

    corpus = read_corpus("EMODB", tiny_emodb)
    feats = load_features(
        build_features(
            corpus, FeatureSettings(lengths={"EMODB": 22050}), tmp_path, workers=2, progress=False
        ).path
    )
    i = feats.meta["path"].tolist().index(str(corpus.utterances[0].path))
    y, _ = librosa.load(corpus.utterances[0].path, sr=22050)
    y = np.pad(y, ((22050 - len(y)) // 2, 22050 - len(y) - (22050 - len(y)) // 2))
    expected = librosa.feature.mfcc(y=y, sr=22050, n_mfcc=40)
    np.testing.assert_allclose(feats.x[i], expected, rtol=1e-4, atol=1e-3)


def test_cache_hit_does_not_touch_audio_and_invalidates_on_change(tiny_emodb, tmp_path):
    corpus = read_corpus("EMODB", tiny_emodb)
    settings = FeatureSettings(lengths={"EMODB": 11025})
    first = build_features(corpus, settings, tmp_path, workers=1, progress=False)
    x_first = np.array(load_features(first.path).x)

    # Overwrite one clip with garbage of the same size and mtime: a hit never decodes it.
    victim = corpus.utterances[0].path
    st = os.stat(victim)
    victim.write_bytes(b"\0" * st.st_size)
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    second = build_features(corpus, settings, tmp_path, workers=1, progress=False)
    assert second.cache_hit and second.path == first.path
    np.testing.assert_array_equal(load_features(second.path).x, x_first)

    # A new mtime, or other settings, is a miss (and the garbage clip is now reported).
    os.utime(victim)
    third = build_features(corpus, settings, tmp_path, workers=1, progress=False)
    assert not third.cache_hit and third.path != first.path
    assert [os.path.basename(p) for p, _ in third.bad_files] == [victim.name]
    assert third.rows == 3
    other = build_features(
        corpus, FeatureSettings(lengths={"EMODB": 8820}), tmp_path, workers=1, progress=False
    )
    assert not other.cache_hit
    assert load_features(other.path).x.shape[2] == 1 + 8820 // 512


def test_bad_files_are_skipped_and_reported_but_a_dead_corpus_fails(tiny_emodb, tmp_path):
    wav = tiny_emodb / "wav"
    sf.write(wav / "11a01Wd.wav", np.zeros(0), 16000)  # zero-length
    (wav / "12a01Le.flac").write_bytes(b"fLaC\0\0\0\x22")  # truncated FLAC
    corpus = read_corpus("EMODB", tiny_emodb)
    result = build_features(
        corpus, FeatureSettings(lengths={"EMODB": 11025}), tmp_path / "c", workers=1, progress=False
    )
    assert result.rows == 4
    reasons = dict((os.path.basename(p), r) for p, r in result.bad_files)
    assert set(reasons) == {"11a01Wd.wav", "12a01Le.flac"}
    assert "no samples" in reasons["11a01Wd.wav"] and "cannot decode" in reasons["12a01Le.flac"]
    # the report survives a cache hit
    again = build_features(
        corpus, FeatureSettings(lengths={"EMODB": 11025}), tmp_path / "c", workers=1, progress=False
    )
    assert again.cache_hit and len(again.bad_files) == 2

    for utt in corpus.utterances:
        utt.path.write_bytes(b"not audio at all")
    with pytest.raises(FeatureError, match=r"EMODB.*none of the 6 files"):
        build_features(
            read_corpus("EMODB", tiny_emodb),
            FeatureSettings(lengths={"EMODB": 11025}),
            tmp_path / "d",
            workers=1,
            progress=False,
        )
    assert not list((tmp_path / "d").glob("*.parquet"))


def test_percentile_length_for_corpora_without_a_paper_length(tmp_path):
    root = tmp_path / "CREMA-D"
    for i, secs in enumerate([0.2, 0.4, 0.6, 0.8, 1.0]):
        write_tone(root / "AudioWAV" / f"100{i + 1}_DFA_ANG_XX.wav", seconds=secs)
    corpus = read_corpus("CREMA-D", root)
    settings = FeatureSettings(length_percentile=50.0)
    feats = load_features(
        build_features(corpus, settings, tmp_path / "c", workers=1, progress=False).path
    )
    # median duration 0.6 s -> 13230 samples -> 1 + 13230 // 512 = 26 frames
    assert feats.x.shape == (5, 40, 26)


def test_unreadable_cache_file_names_the_fix(tmp_path):
    bad = tmp_path / "EMODB-0000.parquet"
    bad.write_bytes(b"PAR1 broken")
    with pytest.raises(FeatureError, match="EMODB-0000.parquet.*delete it"):
        load_features(bad)


@pytest.mark.corpora
def test_real_corpora_features(real_features):
    """All four shipped corpora, at the paper's lengths (built once per test session)."""
    expected = {
        "EMODB": (535, 188),
        "CASIA": (1200, 172),
        "EMOVO": (588, 188),
        "RAVDESS": (1440, 215),
    }
    for name, (rows, frames) in expected.items():
        feats = real_features[name]
        assert feats.x.shape == (rows, 40, frames)
        assert np.isfinite(feats.x).all()
        assert feats.meta["label"].notna().all()


@pytest.mark.corpora
def test_a_96khz_file_among_16khz_ones_is_resampled_not_rejected(corpora_dir, tmp_path):
    """Real EMODB clips (16 kHz) copied into a tree, plus one of them upsampled to 96 kHz.

    The 96 kHz copy goes through the same extraction and comes out with the same shape and,
    within resampling error, the same MFCCs as its 16 kHz original. Measured: a relative
    (Frobenius) difference of 1.5e-5 from the original, while the three other clips differ
    from it by 0.25 to 0.39 (correlation 0.92 to 0.98, too close to 1 to be the criterion): a
    tolerance of 1e-3 has a wide margin either way. The copy is 32-bit float WAV because
    upsampling lifts this clip's peak to 1.013, which a PCM copy would clip (1.2e-4 then).
    """
    import librosa

    src = corpora_dir / "EMODB" / "wav"
    names = ["03a01Wa", "03a01Fa", "08a02Tb", "03a01Nc"]  # anger, happiness, sadness, neutral
    wav = tmp_path / "EMODB" / "wav"
    wav.mkdir(parents=True)
    for name in names:
        y, sr = sf.read(src / f"{name}.flac", dtype="float32")
        assert sr == 16000
        sf.write(wav / f"{name}.flac", y, sr)
    y, sr = sf.read(src / "03a01Wa.flac", dtype="float32")
    hi = wav / "03a01Wb.wav"  # the same clip (same speaker, text and emotion; version b)
    sf.write(hi, librosa.resample(y, orig_sr=sr, target_sr=96000), 96000, subtype="FLOAT")
    assert sf.info(hi).samplerate == 96000

    corpus = read_corpus("EMODB", tmp_path / "EMODB")
    result = build_features(
        corpus, FeatureSettings(), tmp_path / "cache", workers=2, progress=False
    )
    assert result.bad_files == [] and result.rows == 5
    feats = load_features(result.path)
    assert feats.x.shape == (5, 40, 188)  # EMODB at the paper's 96000 samples
    assert np.isfinite(feats.x).all()
    row = {os.path.basename(p): i for i, p in enumerate(feats.meta["path"])}
    assert set(row) == {f"{n}.flac" for n in names} | {"03a01Wb.wav"}
    duration = feats.meta.set_index(feats.meta["path"].map(os.path.basename))["duration"]
    assert duration["03a01Wb.wav"] == pytest.approx(duration["03a01Wa.flac"], abs=1e-3)
    assert feats.meta["label"][row["03a01Wb.wav"]] == "anger"

    def rel(a, b):
        a, b = (np.asarray(v, dtype=np.float64) for v in (a, b))
        return np.linalg.norm(a - b) / np.linalg.norm(a)

    original = feats.x[row["03a01Wa.flac"]]
    assert rel(original, feats.x[row["03a01Wb.wav"]]) < 1e-3
    for other in ("03a01Fa.flac", "08a02Tb.flac", "03a01Nc.flac"):  # the tolerance is meaningful
        assert rel(original, feats.x[row[other]]) > 0.1, other


def test_every_skipped_file_is_counted_in_one_line_per_corpus(tiny_emodb, tmp_path, capsys):
    """`emodna features` (and train, and the sweep, through corpus_features(report=...)) say how
    many files of each corpus were used and skipped, and features lists each skipped file."""
    from emodna.cli import main
    from emodna.features import corpus_features

    wav = tiny_emodb / "wav"
    (wav / "12a01Le.flac").write_bytes(b"fLaC\0\0\0\x22")  # truncated FLAC: not decodable
    write_tone(wav / "not-an-emodb-name.wav", seconds=0.3)  # a name the reader cannot parse
    expected = (
        "EMODB: 4 files used, 2 skipped (1 names not parsed, 1 not decodable; "
        "`emodna features --corpus EMODB` lists each with the reason)"
    )
    lines = []
    corpus_features(
        {"EMODB": read_corpus("EMODB", tiny_emodb)},
        FeatureSettings(),
        tmp_path / "c",
        workers=1,
        progress=False,
        report=lines.append,
    )
    assert lines == [expected]
    assert (
        main(
            [
                "features",
                "--corpus-path",
                f"EMODB={tiny_emodb}",
                "--cache",
                str(tmp_path / "c"),
                "--workers",
                "1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(expected + "; ") and "cache hit" in out[0]
    skipped = sorted(line.split(":")[0].strip() for line in out[1:])
    assert skipped == sorted(
        f"skipped {wav / n}" for n in ("12a01Le.flac", "not-an-emodb-name.wav")
    )


def test_corpora_counts_a_file_that_only_fails_to_decode_once_features_know_it(
    tiny_emodb, tmp_path, capsys
):
    """A FLAC cut in half keeps a valid header: `emodna corpora` cannot see it from headers,
    says that it read headers only, and once the features are cached reports the same count
    as `emodna features`."""
    from emodna.cli import main

    wav = tiny_emodb / "wav"
    good = wav / "03a01Fa.wav"
    data, sr = sf.read(good)
    sf.write(wav / "12a01Le.flac", data, sr)
    cut = (wav / "12a01Le.flac").read_bytes()
    (wav / "12a01Le.flac").write_bytes(cut[: len(cut) // 2])
    assert sf.info(wav / "12a01Le.flac").duration > 0  # the header still reads
    args = ["--corpus-path", f"EMODB={tiny_emodb}", "--cache", str(tmp_path / "c")]

    def row():
        assert main(["corpora", *args]) == 0
        lines = capsys.readouterr().out.splitlines()
        header, values = lines[0].split(), lines[1].split()
        return {
            "files": values[1],
            "skipped": values[-2],
            "checked": values[-1],
            "header": header,
        }, lines

    before, lines = row()
    assert before["header"][-2:] == ["skipped", "checked"]
    assert (before["files"], before["skipped"], before["checked"]) == ("5", "0", "headers")
    assert any("only file headers were read" in line for line in lines)
    assert main(["features", *args, "--workers", "1"]) == 0
    assert capsys.readouterr().out.startswith(
        "EMODB: 4 files used, 1 skipped (0 names not parsed, 1 not decodable"
    )
    after, lines = row()
    assert (after["files"], after["skipped"], after["checked"]) == ("4", "1", "decoded")
    assert any("lists each skipped file" in line for line in lines)


@pytest.fixture
def real_emodb(corpora_dir, tmp_path):
    """An EMODB-shaped tree of three real EMODB clips (one second each, as float WAV)."""
    root = tmp_path / "EMODB"
    (root / "wav").mkdir(parents=True)
    for name in ("03a01Wa", "03a01Nc", "08a01Na"):
        y, sr = sf.read(corpora_dir / "EMODB" / "wav" / f"{name}.flac", dtype="float32")
        sf.write(root / "wav" / f"{name}.wav", y[:sr], sr, subtype="FLOAT")
    return root


def test_a_front_end_failure_or_non_finite_features_skip_the_clip_with_the_reason(
    real_emodb, tmp_path
):
    """A real clip with one NaN sample (librosa raises ParameterError: not a decode error)
    and one scaled far out of [-1, 1] (its power spectrum overflows: NaN MFCCs) are skipped
    and named, like undecodable files; the other clips are cached, all finite."""
    wav = real_emodb / "wav"
    y, sr = sf.read(wav / "03a01Wa.wav", dtype="float32")
    nan = y.copy()
    nan[1000] = np.nan
    sf.write(wav / "11a01Wd.wav", nan, sr, subtype="FLOAT")
    sf.write(wav / "12a01Wd.wav", y * np.float32(1e30), sr, subtype="FLOAT")
    corpus = read_corpus("EMODB", real_emodb)
    settings = FeatureSettings(lengths={"EMODB": 11025})
    for workers in (1, 2):  # in this process, and in a process pool
        result = build_features(
            corpus, settings, tmp_path / f"c{workers}", workers=workers, progress=False
        )
        assert result.rows == 3
        reasons = {os.path.basename(p): r for p, r in result.bad_files}
        assert set(reasons) == {"11a01Wd.wav", "12a01Wd.wav"}
        assert (
            "11a01Wd.wav: computing its mfcc features failed (ParameterError"
            in reasons["11a01Wd.wav"]
        )
        assert "12a01Wd.wav: its mfcc features are not finite" in reasons["12a01Wd.wav"]
        feats = load_features(result.path)
        assert np.isfinite(feats.x).all() and len(feats.x) == 3


def test_the_cache_refuses_non_finite_features_naming_the_clip(real_emodb, tmp_path):
    import pandas as pd

    from emodna.features import _write_atomic, clip_features

    settings = FeatureSettings()
    paths = sorted((real_emodb / "wav").glob("*.wav"))
    x = np.stack(
        [clip_features(p, settings, 11025)[0] for p in paths]
    )  # features, duration, frames
    x[1, 3, 2] = np.inf
    meta = pd.DataFrame({"path": [str(p) for p in paths]})
    target = tmp_path / "EMODB-x.parquet"
    with pytest.raises(FeatureError, match=rf"{paths[1].name}: its features are not finite"):
        _write_atomic(target, x, meta, settings, [])
    assert not target.exists()


def test_the_cache_key_holds_the_versions_of_the_libraries_that_compute_the_features(
    tiny_emodb, tmp_path
):
    """Upgrading librosa (or numpy, ...) is a new cache entry: the key is a function of the
    installed versions, read from importlib.metadata, and the cache file records them."""
    from importlib.metadata import version

    from emodna.features import cache_key, library_versions

    corpus = read_corpus("EMODB", tiny_emodb)
    settings = FeatureSettings(lengths={"EMODB": 11025})
    installed = library_versions("mfcc")
    assert installed["librosa"] == version("librosa") and installed["numpy"] == version("numpy")
    assert "opensmile" not in installed  # MFCCs do not depend on it
    assert library_versions("egemaps_lld")["opensmile"] == version("opensmile")
    key = cache_key(corpus, settings, {})
    assert cache_key(corpus, settings, {}, installed) == key
    for lib in ("librosa", "numpy"):
        assert cache_key(corpus, settings, {}, {**installed, lib: "0.0.1"}) != key
    result = build_features(corpus, settings, tmp_path / "c", workers=1, progress=False)
    import json

    recorded = json.loads(pq.read_schema(result.path).metadata[b"emodna.libraries"])
    assert recorded == installed


@pytest.fixture
def short_emodb(corpora_dir, tmp_path):
    """An EMODB-shaped tree of the five shortest real EMODB clips, whole."""
    clips = sorted(
        (corpora_dir / "EMODB" / "wav").glob("*.flac"), key=lambda p: (sf.info(p).frames, p.name)
    )[:5]
    root = tmp_path / "EMODB"
    (root / "wav").mkdir(parents=True)
    for clip in clips:
        y, sr = sf.read(clip, dtype="float32")
        sf.write(root / "wav" / f"{clip.stem}.wav", y, sr, subtype="FLOAT")
    return root


def test_normalisation_statistics_do_not_depend_on_how_much_silence_pads_the_clips(
    short_emodb, tmp_path
):
    """The same real clips at two fixed lengths 20 hops apart: every clip gets 10 more frames
    of zero padding at each end and the same real frames, 10 frames later. The statistics
    training normalises by (per corpus, per speaker, and the typical target speaker a model
    stores for predict) are over real frames only, so they do not move; over all frames (the
    old rule) the mean of c0 fell with each padding frame. After normalisation the padding is
    0, so the model sees the same clip whatever the fixed length."""
    from emodna.normalize import stats
    from emodna.train import Domain, norm_state

    corpus = read_corpus("EMODB", short_emodb)
    longest = max(sf.info(u.path).frames for u in corpus.utterances) * 22050 // 16000
    short, long_ = 2 * longest, 2 * longest + 20 * 512
    feats = [
        load_features(
            build_features(
                corpus,
                FeatureSettings(lengths={"EMODB": n}),
                tmp_path / "cache",
                workers=1,
                progress=False,
            ).path
        )
        for n in (short, long_)
    ]
    a, b = (Domain.of(f, "arousal") for f in feats)
    np.testing.assert_array_equal(b.frames, a.frames + 10)  # the same frames, 10 later
    for i, ((s0, s1), (t0, t1)) in enumerate(zip(a.frames, b.frames, strict=True)):
        assert s0 > 0 and s1 < a.x.shape[2]  # each clip is padded at both ends
        np.testing.assert_allclose(a.x[i, :, s0:s1], b.x[i, :, t0:t1], atol=1e-3)
    for got, want in zip(stats(a.x, a.frames), stats(b.x, b.frames), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    old_a, old_b = stats(a.x)[0], stats(b.x)[0]  # over every frame, padding included
    assert old_b[0] < old_a[0] - 10  # c0 of silence is far below speech: the mean falls
    for mode in ("corpus", "speaker"):
        na, nb = norm_state(a, mode), norm_state(b, mode)
        np.testing.assert_allclose(na["mean"], nb["mean"], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(na["std"], nb["std"], rtol=1e-4, atol=1e-4)
        # and the model's input is the same clip in zeros (padding is the normalised mean):
        # the longer length's clip is the shorter's with 10 frames of 0 at each end
        xa, xb = a.normalized(mode).x, b.normalized(mode).x
        np.testing.assert_allclose(xb[:, :, 10:-10], xa, atol=2e-3)
        assert not xb[:, :, :10].any() and not xb[:, :, -10:].any()
        for i, (s0, s1) in enumerate(a.frames):
            assert not xa[i, :, :s0].any() and not xa[i, :, s1:].any()
            assert np.abs(xa[i, :, s0:s1]).sum(axis=0).min() > 0  # every real frame is kept
    # by hand for one speaker: mean and std over the real frames of that speaker's clips
    one = a.speaker == a.speaker[0]
    frames = np.concatenate(
        [a.x[i, :, s0:s1] for i, (s0, s1) in zip(np.flatnonzero(one), a.frames[one], strict=True)],
        axis=1,
    ).astype(np.float64)
    got = a.normalized("speaker").x[one]
    s0, s1 = a.frames[one][0]
    np.testing.assert_allclose(
        got[0, :, s0:s1],
        (a.x[one][0, :, s0:s1] - frames.mean(1)[:, None]) / frames.std(1)[:, None],
        rtol=1e-4,
        atol=1e-4,
    )
