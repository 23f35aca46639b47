"""Input features, computed once per corpus and front-end and cached as one Parquet file.

The paper's input: 40 MFCCs from librosa at 22050 Hz, the waveform cut or zero-padded at
both ends (centred) to a fixed number of samples per corpus. The front-end is a setting
(:data:`FRONTENDS`): ``mfcc`` (the paper's, the default), ``logmel`` (librosa log-Mel
filterbank, ``n_mels`` bands), ``egemaps_lld`` (openSMILE's eGeMAPSv02 low-level descriptors,
25 per 10 ms frame) and ``egemaps`` (openSMILE's 88 eGeMAPSv02 functionals of the whole,
uncut clip: one "frame", for the classical baseline; Eyben et al. 2016). One Parquet file
holds a corpus: the features as a fixed-shape tensor column ``x`` of shape [channels,
frames] plus path, label, arousal, valence, speaker, gender, duration, and the range of
frames that hold the clip's audio rather than its zero padding, ``[frame_start,
frame_stop)`` (the normalisation statistics use those alone; ``emodna.normalize``).

The file's name carries a hash of everything that changes its content: the settings, the
versions of the libraries that compute the features (:func:`library_versions`), the label
mapping, and every audio file's path, size and mtime. A second call with the same inputs
finds that file and never opens the audio. Files are written to a temporary name and
renamed, so a cache file is there whole or not at all. A clip the front-end fails on, or
whose features are not finite, is skipped with the reason, like a clip that cannot be
decoded; the cache never holds a NaN or an infinity.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf
from tqdm.auto import tqdm

from emodna.atomic import atomic_write
from emodna.config import FRONTENDS
from emodna.corpus import Corpus
from emodna.errors import FeatureError
from emodna.frontends import (  # one clip's features; the names below are re-exported
    FRONTEND_LIBRARIES as FRONTEND_LIBRARIES,
)
from emodna.frontends import HOP_LENGTH as HOP_LENGTH
from emodna.frontends import clip_features, library_versions
from emodna.frontends import egemaps as egemaps
from emodna.frontends import extract as extract
from emodna.frontends import fix_length as fix_length
from emodna.frontends import logmel as logmel
from emodna.frontends import mfcc as mfcc
from emodna.frontends import read_audio as read_audio
from emodna.labels import TASKS, encode, load_mapping, task_label

# Bump when the extraction code changes in a way that changes the numbers. The versions of
# the libraries that compute them are in the cache key on their own (library_versions).
FEATURE_VERSION = 3  # 3: each clip's real frames (frame_start, frame_stop)

EGEMAPS_LLD, EGEMAPS_FUNCTIONALS = 25, 88  # eGeMAPSv02's descriptor counts

# The authors' fixed lengths, in samples at 22050 Hz (docs/design.md).
PAPER_LENGTHS = {
    "CASIA": 88000,
    "EMODB": 96000,
    "EMOVO": 96000,
    "IEMOCAP": 310000,
    "RAVDESS": 110000,
    "SAVEE": 130000,
}


@dataclass(frozen=True)
class FeatureSettings:
    """What determines the features. ``lengths`` overrides the per-corpus sample count."""

    sample_rate: int = 22050
    n_mfcc: int = 40
    lengths: dict[str, int] = field(default_factory=dict)
    length_percentile: float = 95.0  # corpora without a paper length and no override
    frontend: str = "mfcc"  # one of FRONTENDS
    n_mels: int = 64  # logmel only

    def __post_init__(self):
        if self.frontend not in FRONTENDS:
            raise FeatureError(
                f"unknown front-end {self.frontend!r}; use one of {', '.join(FRONTENDS)}"
            )

    @property
    def channels(self) -> int:
        """Features per frame: the model's input channels."""
        return {
            "mfcc": self.n_mfcc,
            "logmel": self.n_mels,
            "egemaps_lld": EGEMAPS_LLD,
            "egemaps": EGEMAPS_FUNCTIONALS,
        }[self.frontend]

    def frames(self, length: int) -> int:
        """Frames of a clip of ``length`` samples: librosa's centred frames exactly; for
        openSMILE's 10 ms hop with unpadded 60 ms windows, to within one frame (its window
        and hop are rounded to whole samples); one for the functionals."""
        if self.frontend == "egemaps":
            return 1
        if self.frontend == "egemaps_lld":
            return max(1, int((length / self.sample_rate - 0.06) * 100) + 1)
        return 1 + length // HOP_LENGTH

    def key(self) -> dict:
        """The fields that change the numbers (for cache keys and exports)."""
        return asdict(self)

    @classmethod
    def for_config(cls, cfg, **kwargs) -> FeatureSettings:
        """The settings a TrainConfig's run reads (its :attr:`TrainConfig.feature_set`)."""
        return cls(frontend=cfg.feature_set, **kwargs)

    def length_for(self, corpus: str) -> int | None:
        """The fixed length in samples, or None when it must come from the durations."""
        if corpus in self.lengths:
            return int(self.lengths[corpus])
        if self.sample_rate == 22050 and corpus in PAPER_LENGTHS:
            return PAPER_LENGTHS[corpus]
        return None


@dataclass
class Features:
    """One corpus's features: ``x`` [N, channels, frames] float32 and one meta row per clip."""

    corpus: str
    x: np.ndarray
    meta: pd.DataFrame

    def labels(self, task: str, mapping: dict | None = None) -> np.ndarray:
        """Class indices (int64) for ``task``, from the emotion labels and a mapping."""
        return encode(self.meta["label"].tolist(), task, mapping)

    def clips(self) -> np.ndarray | None:
        """Each clip's file name, which keys its kept predictions (None for a store without
        paths: row numbers do)."""
        if "path" not in self.meta:
            return None
        return self.meta["path"].map(lambda p: Path(p).name).to_numpy(dtype=str)

    def frames(self) -> np.ndarray | None:
        """Each clip's real frames ``[start, stop)``, [N, 2] int (``emodna.normalize.real``);
        None for a store without them (every frame then counts as real)."""
        if not {"frame_start", "frame_stop"} <= set(self.meta.columns):
            return None
        return self.meta[["frame_start", "frame_stop"]].to_numpy(dtype=np.int64)

    def speakers(self) -> np.ndarray:
        """One speaker id per clip, as strings (for ``normalize: speaker``)."""
        return self.meta["speaker"].astype(str).to_numpy()

    @property
    def nbytes(self) -> int:
        return int(self.x.nbytes)


@dataclass
class BuildResult:
    """What :func:`build_features` did for one corpus."""

    corpus: str
    path: Path
    rows: int
    cache_hit: bool
    seconds: float
    bad_files: list[tuple[str, str]]  # (path, reason)


def _extract_one(job: tuple[str, int, FeatureSettings]):
    """Worker: (path, length, settings) -> (features, duration seconds, real frames) or
    (None, reason, None)."""
    path, length, settings = job
    try:
        return clip_features(path, settings, length)
    except FeatureError as exc:
        return None, str(exc), None


# ---------------------------------------------------------------------------------------
# The cache


def cache_key(
    corpus: Corpus, settings: FeatureSettings, mapping: dict, versions: dict | None = None
) -> str:
    """A hash of the settings, the versions of the libraries that compute the features
    (``versions``, default :func:`library_versions`: an upgrade of librosa is a new cache
    entry), the mapping and every file's (path, size, mtime, emotion, speaker): an edited
    manifest is a new cache entry."""
    versions = library_versions(settings.frontend) if versions is None else versions
    h = hashlib.sha256()
    h.update(
        json.dumps(
            [FEATURE_VERSION, corpus.name, settings.key(), versions, mapping], sort_keys=True
        ).encode()
    )
    for utt in corpus.utterances:
        st = os.stat(utt.path)
        h.update(
            f"{utt.path}\0{st.st_size}\0{st.st_mtime_ns}\0{utt.emotion}\0{utt.speaker}\n".encode()
        )
    return h.hexdigest()[:16]


def default_cache_dir() -> Path:
    """``$EMODNA_CACHE``, else ``~/.cache/emodna/features``."""
    env = os.environ.get("EMODNA_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "emodna" / "features"


def cache_path(corpus: Corpus, settings: FeatureSettings, mapping: dict, cache_dir: Path) -> Path:
    return Path(cache_dir) / f"{corpus.name}-{cache_key(corpus, settings, mapping)}.parquet"


def cached_bad_files(
    corpus: Corpus, settings: FeatureSettings, cache_dir: str | Path | None, mapping: dict
) -> list[tuple[str, str]] | None:
    """The files the cached extraction of ``corpus`` could not decode, or None when its
    features are not cached yet (nothing is extracted here)."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache_path(corpus, settings, mapping, cache_dir)
    if not path.exists():
        return None
    return [
        tuple(b) for b in json.loads(pq.read_schema(path).metadata.get(b"emodna.bad_files", b"[]"))
    ]


def _percentile_length(corpus: Corpus, settings: FeatureSettings) -> int:
    durations = []
    for utt in corpus.utterances:
        try:
            durations.append(sf.info(str(utt.path)).duration)
        except Exception:
            continue  # reported as a bad file by the extraction pass
    if not durations:
        raise FeatureError(f"{corpus.root}: no file of corpus {corpus.name} can be decoded")
    return int(np.percentile(durations, settings.length_percentile) * settings.sample_rate)


def _one_thread_per_worker() -> None:
    """Each worker process is one core's worth of work: no BLAS/OpenMP threads of its own."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def _process_map(workers: int) -> Callable[[Callable, Iterable], Iterable]:
    """A map over ``workers`` processes (or in this process for 1), in input order."""
    if workers <= 1:
        return map

    def pmap(fn, jobs):
        jobs = list(jobs)
        chunksize = max(1, len(jobs) // (workers * 8))
        with ProcessPoolExecutor(workers, initializer=_one_thread_per_worker) as pool:
            yield from pool.map(fn, jobs, chunksize=chunksize)

    return pmap


def build_features(
    corpus: Corpus,
    settings: FeatureSettings | None = None,
    cache_dir: str | Path | None = None,
    *,
    mapping: dict | None = None,
    workers: int | None = None,
    map_fn: Callable[[Callable, Iterable], Iterable] | None = None,
    progress: bool = True,
) -> BuildResult:
    """Extract (or find in the cache) the features of one corpus; returns where they are.

    ``map_fn(fn, jobs)`` replaces the process pool, e.g. with Ray tasks when Ray runs;
    it must yield results in input order. Unreadable files are skipped and reported in
    ``bad_files``; a corpus with no usable file raises FeatureError.
    """
    settings = settings or FeatureSettings()
    mapping = load_mapping(None) if mapping is None else mapping
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    t0 = time.perf_counter()
    path = cache_path(corpus, settings, mapping, cache_dir)
    bad = cached_bad_files(corpus, settings, cache_dir, mapping)
    if bad is not None:
        rows = pq.read_metadata(path).num_rows
        return BuildResult(corpus.name, path, rows, True, time.perf_counter() - t0, bad)

    length = settings.length_for(corpus.name) or _percentile_length(corpus, settings)
    jobs = [(str(u.path), length, settings) for u in corpus.utterances]
    if map_fn is None:
        map_fn = _process_map(workers or os.cpu_count() or 1)
    results = tqdm(
        map_fn(_extract_one, jobs),
        total=len(jobs),
        desc=f"{settings.frontend} {corpus.name}",
        unit="file",
        disable=not progress,
        file=sys.stderr,
    )
    feats, rows, bad = [], [], []
    for utt, (x, info, frames) in zip(corpus.utterances, results, strict=True):
        if x is None:
            bad.append((str(utt.path), info))
            continue
        feats.append(x)
        rows.append(
            {
                "path": str(utt.path),
                "label": utt.emotion,
                **{t: task_label(utt.emotion, t, mapping) for t in TASKS},
                "speaker": utt.speaker,
                "gender": utt.gender,
                "duration": info,
                "frame_start": frames[0],
                "frame_stop": frames[1],
            }
        )
    if not feats:
        raise FeatureError(
            f"{corpus.root}: none of the {len(jobs)} files of {corpus.name} could be decoded "
            f"(first: {bad[0][1]}); check the folder holds audio soundfile can read"
        )
    x = np.stack(feats)  # raw features: normalisation is part of training (emodna.normalize)
    _write_atomic(path, x, pd.DataFrame(rows), settings, bad)
    return BuildResult(corpus.name, path, len(rows), False, time.perf_counter() - t0, bad)


def _write_atomic(path: Path, x: np.ndarray, meta: pd.DataFrame, settings, bad) -> None:
    finite = np.isfinite(x).reshape(len(x), -1).all(axis=1)
    if not finite.all():  # clip_features skips such clips; this guards every other way in
        first = meta["path"].iloc[int(np.flatnonzero(~finite)[0])]
        raise FeatureError(
            f"{first}: its features are not finite ({int((~finite).sum())} clip(s) of "
            f"{len(x)}); the cache {path.name} is not written; re-export the clip or delete it"
        )
    table = pa.Table.from_pandas(meta, preserve_index=False)
    table = table.append_column("x", pa.FixedShapeTensorArray.from_numpy_ndarray(x))
    table = table.replace_schema_metadata(
        {
            b"emodna.settings": json.dumps(settings.key()).encode(),
            b"emodna.libraries": json.dumps(library_versions(settings.frontend)).encode(),
            b"emodna.bad_files": json.dumps(bad).encode(),
        }
    )
    # one row group, so the tensor column reads back as one chunk, without a copy
    atomic_write(path, lambda tmp: pq.write_table(table, tmp, row_group_size=max(1, len(meta))))


def load_features(path: str | Path) -> Features:
    """Read one corpus's Parquet file; ``x`` is a read-only view of Arrow's buffer."""
    path = Path(path)
    try:
        table = pq.read_table(path)
        column = table.column("x").combine_chunks()  # no copy for a single chunk
        x = column.to_numpy_ndarray()
    except (OSError, KeyError, pa.ArrowException) as exc:
        raise FeatureError(
            f"{path}: not a readable feature file ({exc}); delete it to rebuild"
        ) from exc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        meta = table.drop_columns(["x"]).to_pandas()
    corpus = path.name.rsplit("-", 1)[0]
    return Features(corpus=corpus, x=x, meta=meta)


def usage_line(corpus: Corpus, result: BuildResult) -> str:
    """``EMODB: 533 files used, 2 skipped (...)``: nothing on disk is dropped without a word."""
    unparsed, bad = len(corpus.unparsed), len(result.bad_files)
    line = f"{corpus.name}: {result.rows} files used, {unparsed + bad} skipped"
    if unparsed or bad:
        line += (
            f" ({unparsed} names not parsed, {bad} not decodable; `emodna features --corpus "
            f"{corpus.name}` lists each with the reason)"
        )
    return line


def corpus_features(
    corpora: dict[str, Corpus],
    settings: FeatureSettings | None = None,
    cache_dir: str | Path | None = None,
    *,
    report: Callable[[str], None] | None = None,
    **build_kwargs,
) -> dict[str, Features]:
    """Build (or find) and load the features of several corpora, by name. ``report`` (e.g.
    ``print``) gets one :func:`usage_line` per corpus."""
    out = {}
    for name, corpus in corpora.items():
        result = build_features(corpus, settings, cache_dir, **build_kwargs)
        if report is not None:
            report(usage_line(corpus, result))
        out[name] = load_features(result.path)
    return out
