"""bench/train.py's vmap-over-seeds experiment runs on the model as it is (it broke when the
model's dropout and pool became emodna's own), on small synthetic corpora."""

from __future__ import annotations

import torch

from tests.helpers import domain, load_bench

bench_train = load_bench("train")


def test_vmap_seeds_times_both_sides_and_names_the_lstm_as_what_fails():
    torch.set_num_threads(1)
    r = bench_train.vmap_seeds(domain(80, 0), domain(80, 1, shift=0.5), n_seeds=2, n_steps=1)
    assert "lstm" in r["full_model_error"].lower()  # nn.LSTM has no batching rule, nothing else
    assert r["separate_s"] > 0 and r["vmap_s"] > 0
