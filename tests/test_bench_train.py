"""bench/train.py's vmap-over-seeds experiment runs on the model as it is (it broke when the
model's dropout and pool became emodna's own), on small synthetic corpora; its FLOP count
includes the LSTM's."""

from __future__ import annotations

import torch

from tests.helpers import domain, load_bench

bench_train = load_bench("train")


def test_vmap_seeds_times_both_sides_and_names_the_lstm_as_what_fails():
    torch.set_num_threads(1)
    r = bench_train.vmap_seeds(domain(80, 0), domain(80, 1, shift=0.5), n_seeds=2, n_steps=1)
    assert "lstm" in r["full_model_error"].lower()  # nn.LSTM has no batching rule, nothing else
    assert r["separate_s"] > 0 and r["vmap_s"] > 0


def test_flop_count_includes_the_lstm_hand_computed():
    from torch.utils.flop_counter import FlopCounterMode

    lstm = torch.nn.LSTM(8, 16, batch_first=True, bidirectional=True)
    x = torch.randn(3, 5, 8, requires_grad=True)  # B 3, T 5, I 8; H 16, so 4H = 64 gate rows
    with FlopCounterMode(display=False, custom_mapping=bench_train.LSTM_FLOP_FORMULAS) as c:
        lstm(x)[0].sum().backward()
    forward = 2 * (2 * 5 * 3 * 64 * (8 + 16))  # two directions of 2 T B 4H (I + H)
    assert c.get_total_flops() == 3 * forward  # backward: inputs' and weights' gradients
