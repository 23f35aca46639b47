"""Shared fixtures."""

from dataclasses import dataclass
from pathlib import Path

import pytest

# The real corpora live next to the project, not in it: <repo>/../shared/corpora.
CORPORA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"


@pytest.fixture(scope="session")
def corpora_dir() -> Path:
    """The folder of real corpora; tests that use it are skipped where it is absent."""
    if not CORPORA_DIR.is_dir():
        pytest.skip(f"real corpora not found at {CORPORA_DIR}; tests that need them are skipped")
    return CORPORA_DIR


@pytest.fixture(scope="session")
def real_corpora(corpora_dir):
    """The four shipped corpora, read once per test session."""
    from emodna.corpora import load_corpora

    return load_corpora(corpora_dir)


@pytest.fixture(scope="session")
def feature_cache(tmp_path_factory) -> Path:
    """A feature cache private to this test session (cold at its start)."""
    return tmp_path_factory.mktemp("feature-cache")


@pytest.fixture(scope="session")
def real_features(real_corpora, feature_cache):
    """MFCCs of the four shipped corpora at the paper's lengths, built once per session."""
    from emodna.features import corpus_features

    return corpus_features(real_corpora, cache_dir=feature_cache, workers=2, progress=False)


@pytest.fixture(scope="session")
def warm_cache(real_corpora, feature_cache) -> Path:
    """The feature cache holding the MFCCs of EMODB and CASIA, the corpora of the smoke sweeps (built once)."""
    from emodna.features import FeatureSettings, corpus_features

    corpus_features(
        {n: real_corpora[n] for n in ("EMODB", "CASIA")},
        FeatureSettings(),
        feature_cache,
        workers=2,
        progress=False,
    )
    return feature_cache


@dataclass
class SmokeSweep:
    """The smoke sweep of a test session (:func:`smoke_sweep`)."""

    argv: list[str]  # python sweep/run.py's arguments (without --address local --num-cpus 2)
    runs: Path  # the folder README's ``runs/`` stands for
    out: Path  # the sweep folder, runs/first-hour
    log: Path  # what the sweep printed
    rc: int  # its exit status: each test checks it, so a failed sweep fails them, not setup


@pytest.fixture(scope="session")
def smoke_sweep(corpora_dir, warm_cache, tmp_path_factory) -> SmokeSweep:
    """README's first-hour sweep, run once per test session for every test that reads one
    (tests/test_sweep.py, tests/test_readme.py): the shipped smoke space with ``--budget 2``,
    2 configs x 2 scenarios x 1 seed of 2 epochs, in its own process session with an embedded
    Ray of 2 CPUs, reading the session's warm feature cache through ``$EMODNA_CACHE`` as the
    README's commands do. Tests may add files to its folder (the first hour summarizes and
    retrains there) but must not change what the sweep wrote."""
    from tests.helpers import run_sweep

    runs = tmp_path_factory.mktemp("runs")
    out = runs / "first-hour"
    argv = ["--corpora-dir", str(corpora_dir), "--space", "search_spaces/smoke.yaml"]
    argv += ["--budget", "2", "--out", str(out)]
    log = runs / "first-hour.log"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("EMODNA_CACHE", str(warm_cache))
        rc = run_sweep(log, *argv)
    return SmokeSweep(argv, runs, out, log, rc)


# A test that starts Ray or extracts whole corpora is slow (`pytest -m "not slow"` skips it,
# the full suite and CI run it): marked here by the fixtures that do that work, so that a new
# test using one of them cannot land on the fast path by accident.
SLOW_FIXTURES = frozenset({"real_features", "warm_cache", "ray_local", "smoke_sweep"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
