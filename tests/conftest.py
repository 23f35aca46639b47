"""Shared fixtures."""

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


# A test that starts Ray or extracts whole corpora is slow (`pytest -m "not slow"` skips it,
# the full suite and CI run it): marked here by the fixtures that do that work, so that a new
# test using one of them cannot land on the fast path by accident.
SLOW_FIXTURES = frozenset({"real_features", "warm_cache", "ray_local"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
