"""Feature extraction speed per front-end: cold runs with 1 and 2 workers, and a cache hit.

    python bench/features.py [--corpora-dir ../shared/corpora] [--workers 1 2]
        [--frontends mfcc logmel egemaps_lld egemaps]

For each front-end and worker count, every corpus is extracted into a fresh, empty cache
folder (a cold run: decode, resample to 22050 Hz, the front-end, write Parquet). Then the
same call is repeated on the warm cache. Prints files per second and seconds of audio per
second. Targets (issue 2, MFCC): 2 workers at least 1.7x faster than 1; all four corpora
cold < 60 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from emodna.config import FRONTENDS
from emodna.corpora import load_corpora
from emodna.features import FeatureSettings, build_features, load_features

ROOT = Path(__file__).resolve().parents[1]


def run(corpora, settings, cache: Path, workers: int) -> tuple[float, int, float]:
    t0 = time.perf_counter()
    files = audio = 0
    for corpus in corpora.values():
        result = build_features(corpus, settings, cache, workers=workers, progress=False)
        files += result.rows
        audio += float(load_features(result.path).meta["duration"].sum())
    return time.perf_counter() - t0, files, audio


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--corpora-dir", type=Path, default=ROOT.parent / "shared" / "corpora")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--frontends", nargs="+", choices=FRONTENDS, default=list(FRONTENDS))
    args = ap.parse_args()
    corpora = load_corpora(args.corpora_dir)
    rows = []
    for frontend, workers in ((f, w) for f in args.frontends for w in args.workers):
        settings = FeatureSettings(frontend=frontend)
        with tempfile.TemporaryDirectory() as cache:
            cold, files, audio = run(corpora, settings, Path(cache), workers)
            warm, _, _ = run(corpora, settings, Path(cache), workers)
        rows.append(
            {
                "frontend": frontend,
                "workers": workers,
                "files": files,
                "audio_s": round(audio),
                "cold_s": round(cold, 1),
                "files_per_s": round(files / cold, 1),
                "audio_s_per_s": round(audio / cold, 1),
                "cache_hit_s": round(warm, 3),
                "hit/cold": round(warm / cold, 4),
            }
        )
    table = pd.DataFrame(rows)
    print(f"corpora: {', '.join(corpora)}")
    print(table.to_string(index=False))
    for frontend, g in table.groupby("frontend", sort=False):
        base = g.iloc[0]
        for _, r in g.iloc[1:].iterrows():
            print(
                f"{frontend}: speed-up {r.workers} vs {base.workers} workers: "
                f"{base.cold_s / r.cold_s:.2f}x"
            )


if __name__ == "__main__":
    main()
