"""One clip's features, pure signal processing: decode and resample (soundfile, soxr), cut
or pad to a fixed length, then the front-end (librosa MFCC or log-Mel, openSMILE eGeMAPS).

:func:`clip_features` is what both the feature cache (``emodna.features``) and ``emodna
predict`` compute per file; it raises FeatureError, naming the file, for a file that cannot
be decoded, a front-end failure, or features that are not finite; with the features come
the frames that hold audio rather than padding (:func:`real_frames`, for the normalisation
statistics). :func:`library_versions`
names the installed versions of the code that computes the numbers (part of the cache key).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import soundfile as sf

from emodna.errors import FeatureError

HOP_LENGTH = 512  # librosa's default hop; its frames = 1 + length // HOP_LENGTH

# ``settings`` below is an emodna.features.FeatureSettings (which imports this module).
# The distributions whose code computes each front-end's numbers: decoding (soundfile),
# resampling (librosa, soxr), the front-end itself (librosa and scipy's DCT, or openSMILE).
_COMMON_LIBRARIES = ("numpy", "scipy", "soundfile", "soxr", "librosa")
FRONTEND_LIBRARIES = {
    "mfcc": _COMMON_LIBRARIES,
    "logmel": _COMMON_LIBRARIES,
    "egemaps_lld": (*_COMMON_LIBRARIES, "opensmile"),
    "egemaps": (*_COMMON_LIBRARIES, "opensmile"),
}


def fix_length(y: np.ndarray, length: int) -> np.ndarray:
    """Cut or zero-pad ``y`` to ``length`` samples, equally at both ends (centred)."""
    n = len(y)
    if n >= length:
        start = (n - length) // 2
        return y[start : start + length]
    before = (length - n) // 2
    return np.pad(y, (before, length - n - before))


def real_frames(n_samples: int, length: int, settings, n_frames: int) -> tuple[int, int]:
    """The frames ``[start, stop)`` of a clip of ``n_samples`` samples, cut or padded to
    ``length`` by :func:`fix_length`, whose centre lies in its audio rather than in the zero
    padding (all ``n_frames`` for a clip that was cut; at least one frame).

    A frame's centre: frame ``t`` of librosa (centred frames) at sample ``t * HOP_LENGTH``; of
    openSMILE's eGeMAPS descriptors at the middle of the span openSMILE reports for it,
    ``[t * 10 ms, t * 10 ms + 20 ms)``. The functionals are one frame of the uncut clip."""
    if settings.frontend == "egemaps":
        return 0, n_frames
    before = (length - n_samples) // 2 if n_samples < length else 0
    end = before + min(n_samples, length)  # the audio is samples [before, end)
    if settings.frontend == "egemaps_lld":
        hop, offset = settings.sample_rate / 100, settings.sample_rate / 100
    else:
        hop, offset = HOP_LENGTH, 0
    start = max(0, math.ceil((before - offset) / hop))  # first t with centre >= before
    stop = min(n_frames, math.ceil((end - offset) / hop))  # first t with centre >= end
    start = min(start, n_frames - 1)
    return start, max(stop, start + 1)


def read_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Mono float32 audio at ``sample_rate``; any rate or channel count soundfile reads.

    Raises FeatureError (naming the file) for unreadable or empty audio.
    """
    import librosa  # slow to import; only the workers that decode audio need it

    try:
        y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile's errors are not one class
        raise FeatureError(
            f"{path}: cannot decode audio ({exc}); re-export it or delete it"
        ) from exc
    if y.shape[0] == 0:
        raise FeatureError(f"{path}: audio file holds no samples; re-export it or delete it")
    y = y.mean(axis=1)
    if sr != sample_rate:
        y = librosa.resample(y, orig_sr=sr, target_sr=sample_rate, res_type="soxr_hq")
    return y.astype(np.float32, copy=False)


def mfcc(y: np.ndarray, settings) -> np.ndarray:
    """librosa MFCCs [n_mfcc, frames], librosa defaults otherwise."""
    import librosa

    return librosa.feature.mfcc(y=y, sr=settings.sample_rate, n_mfcc=settings.n_mfcc).astype(
        np.float32
    )


def logmel(y: np.ndarray, settings) -> np.ndarray:
    """librosa log-Mel filterbank [n_mels, frames] in dB (power spectrogram, librosa defaults)."""
    import librosa

    mel = librosa.feature.melspectrogram(y=y, sr=settings.sample_rate, n_mels=settings.n_mels)
    return librosa.power_to_db(mel).astype(np.float32)


@functools.cache
def _smile(level: str):
    """One openSMILE extractor per process and level (building it parses its config)."""
    import opensmile

    return opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02,
        feature_level=getattr(opensmile.FeatureLevel, level),
    )


def egemaps(y: np.ndarray, settings, level: str) -> np.ndarray:
    """openSMILE eGeMAPSv02 on ``y``: ``LowLevelDescriptors`` [25, frames] or ``Functionals``
    [88, 1], in openSMILE's column order."""
    table = _smile(level).process_signal(y, settings.sample_rate)
    return np.ascontiguousarray(table.to_numpy(dtype=np.float32).T)


def extract(y: np.ndarray, settings, length: int) -> np.ndarray:
    """The front-end's features [channels, frames] of one clip: cut or padded to ``length``
    samples first, except for the functionals, which summarise the clip as it is."""
    if settings.frontend == "egemaps":
        return egemaps(y, settings, "Functionals")
    y = fix_length(y, length)
    if settings.frontend == "egemaps_lld":
        return egemaps(y, settings, "LowLevelDescriptors")
    if settings.frontend == "logmel":
        return logmel(y, settings)
    return mfcc(y, settings)


def clip_features(path: str | Path, settings, length: int):
    """One file's features [channels, frames], its duration in seconds, and the range of its
    real frames ``(start, stop)`` (:func:`real_frames`; the rest is zero padding).

    Raises FeatureError, naming the file, when it cannot be decoded, when the front-end fails
    on it, or when its features hold a NaN or an infinity (e.g. samples far out of [-1, 1]).
    """
    try:
        y = read_audio(path, settings.sample_rate)
        with np.errstate(over="ignore", invalid="ignore"):  # reported below, naming the file
            x = extract(y, settings, length)
    except FeatureError:
        raise
    except Exception as exc:  # librosa's ParameterError (resampling, the front-end),
        # openSMILE's RuntimeError, numpy's ValueError, ...: a failure on one clip's samples
        raise FeatureError(
            f"{path}: computing its {settings.frontend} features failed "
            f"({type(exc).__name__}: {str(exc).strip()[:160]}); re-export it or delete it"
        ) from exc
    bad = ~np.isfinite(x)
    if bad.any():
        raise FeatureError(
            f"{path}: its {settings.frontend} features are not finite ({int(np.isnan(x).sum())} "
            f"NaN, {int(np.isinf(x).sum())} inf of {x.size}; samples far out of [-1, 1]?); "
            "re-export it or delete it"
        )
    return x, len(y) / settings.sample_rate, real_frames(len(y), length, settings, x.shape[-1])


def library_versions(frontend: str) -> dict[str, str]:
    """The installed version of each distribution that computes ``frontend``'s numbers
    (:data:`FRONTEND_LIBRARIES`), from importlib.metadata; "absent" for one not installed."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in FRONTEND_LIBRARIES[frontend]:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out
