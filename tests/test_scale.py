"""The cost model shared by the sweep's plan and bench/scale.py (sweep/cost.py), against
hand-computed numbers; the trainable's trial hook the bench watches a cluster with; and
bench/scale.py's parts, without measuring or starting Ray."""

from __future__ import annotations

import ast
import sys
from argparse import Namespace

import pytest

from sweep.cost import MEASURED, CostModel, Timing, wall_seconds
from tests.helpers import ROOT

BENCH = ROOT / "bench"
SCALE_MODULES = ["scale.py", "scale_measure.py", "scale_extrapolate.py", "scale_simulate.py"]


def test_epoch_and_unit_by_hand():
    m = CostModel(a=0.05, b=1e-5, c=2e-6)
    # source 535 clips of 188 frames, target 1200 of 172
    assert m.split(535) == (481, 54)  # ceil(53.5) held out
    assert m.steps(535, 1200) == 19  # ceil(max(481, 1200) / 64) = ceil(18.75)
    assert m.step(188, 172) == pytest.approx(0.2804)  # 0.05 + 1e-5 * 64 * 360
    assert m.evaluation(535, 188, 1200, 172) == pytest.approx(0.433104)  # 2e-6 * 216552
    assert m.epoch(535, 188, 1200, 172) == pytest.approx(5.760704)  # 19 * 0.2804 + 0.433104
    assert m.unit(535, 188, 1200, 172, epochs=30) == pytest.approx(172.82112)
    # the source is the longer side: ceil(max(1440 - 144, 588) / 64) = ceil(20.25) steps
    assert m.steps(1440, 588) == 21


def test_calibrated_keeps_the_shape_and_takes_the_measured_step():
    m = CostModel(a=0.1, b=1e-5, c=2e-6).calibrated(0.4, frames=100, batch=50)
    # at batch 50 a step of 100 + 100 frames is 0.1 + 1e-5 * 50 * 200 = 0.2: all x 2
    assert (m.a, m.b, m.c, m.batch) == pytest.approx((0.2, 2e-5, 4e-6, 50))
    assert m.step(100, 100) == pytest.approx(0.4)
    # an evaluation measured apart (float32, not the step's autocast) is taken as it is
    m = CostModel(a=0.1, b=1e-5, c=2e-6).calibrated(0.4, frames=100, batch=50, evaluation=7e-6)
    assert (m.a, m.b, m.c) == pytest.approx((0.2, 2e-5, 7e-6))


def test_fit_splits_a_fixed_part_from_the_frames():
    truth = CostModel(a=0.05, b=1e-5, c=2e-6)
    sizes = [(640, 100, 640, 100), (535, 188, 1200, 172), (320, 606, 320, 606)]
    timings = [Timing(*s, truth.epoch(*s), truth.evaluation(*s)) for s in sizes]
    fitted = CostModel.fit(timings)
    assert (fitted.a, fitted.b, fitted.c) == pytest.approx((0.05, 1e-5, 2e-6))


def test_fit_puts_everything_in_the_frames_when_the_fixed_part_comes_out_negative():
    # 640 + 640 clips: 10 steps, 64 held out. Steps of 0.1 s at 100 + 100 frames and 0.3 s at
    # 200 + 200 would need a = -0.1; so a = 0 and b = (0.1 * 12800 + 0.3 * 25600) /
    # (12800^2 + 25600^2) = 8960 / 819200000. Evaluations of 1e-6 x (640 f + 64 f).
    timings = [
        Timing(640, 100, 640, 100, epoch=10 * 0.1 + 0.0704, evaluation=0.0704),
        Timing(640, 200, 640, 200, epoch=10 * 0.3 + 0.1408, evaluation=0.1408),
    ]
    fitted = CostModel.fit(timings)
    assert fitted.a == 0.0
    assert fitted.b == pytest.approx(1.09375e-5)
    assert fitted.c == pytest.approx(1e-6)


def test_wall_seconds_by_hand():
    assert wall_seconds(3600, slots=4, efficiency=0.5) == pytest.approx(1800)
    assert wall_seconds(3600, slots=4, efficiency=0.5, longest=2000) == 2000
    assert wall_seconds(3600, slots=0) == 3600  # no slots counts as one


def test_measured_is_the_fit_docs_scaling_reports():
    text = (ROOT / "docs" / "scaling.md").read_text()
    line = (
        f"fit ( cpu): step = {1e3 * MEASURED.a:3.0f} ms + {1e6 * MEASURED.b:.2f} us x 64 x "
        f"(f_s + f_t); evaluation = {1e6 * MEASURED.c:.2f} us x (N_t f_t + n_val f_s)"
    )
    assert line in text


# ---------------------------------------------------------------------------------------
# the trainable's hook


def test_trial_hook_calls_the_named_function_at_start_and_what_it_returns_at_end(
    tmp_path, monkeypatch
):
    from sweep.trainable import trial_hook

    (tmp_path / "scale_hook_probe.py").write_text(
        "calls = []\n"
        "def observe(config, corpora):\n"
        "    calls.append(('start', config, corpora))\n"
        "    return lambda: calls.append(('end',))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("EMODNA_TRIAL_HOOK", "scale_hook_probe:observe")
    done = trial_hook({"source": "A"}, {"mfcc": {"A": "ref"}})
    import scale_hook_probe

    assert scale_hook_probe.calls == [("start", {"source": "A"}, {"mfcc": {"A": "ref"}})]
    done()
    assert scale_hook_probe.calls[-1] == ("end",)


def test_trial_hook_unset_does_nothing(monkeypatch):
    from sweep.trainable import trial_hook

    monkeypatch.delenv("EMODNA_TRIAL_HOOK", raising=False)
    assert trial_hook({}, {})() is None


# ---------------------------------------------------------------------------------------
# bench/scale.py


@pytest.fixture(scope="module")
def bench_path():
    """bench/ on the path, last: its modules import each other by name, as the script does."""
    sys.path.append(str(BENCH))
    yield
    sys.path.remove(str(BENCH))


def test_scale_modules_keep_the_house_sizes():
    for name in SCALE_MODULES:
        source = (BENCH / name).read_text()
        assert len(source.splitlines()) <= 450, name
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                assert node.end_lineno - node.lineno + 1 <= 150, f"{name}: {node.name}"


def test_paper_sweep_extrapolation_gives_docs_scaling_figures(bench_path, capsys):
    """Part 2 on the cost model docs/scaling.md reports (the CPU fit, shipped corpora sizes):
    the figures the doc quotes."""
    from scale_extrapolate import print_extrapolation, search_workers
    from scale_measure import shipped_sizes

    assert [search_workers(s) for s in (2, 8, 32, 16, 64, 256)] == [1, 1, 2, 1, 4, 17]
    args = Namespace(
        iemocap=5531, sweep_epochs=30, nodes=[1, 4, 16], cores=[2, 16], efficiency=0.85,
        configs=[20],
    )  # fmt: skip
    ratios = dict.fromkeys([1, 2, 4, 17], 0.6)
    print_extrapolation(MEASURED, shipped_sizes(), args, ratios, "test")
    out = capsys.readouterr().out
    assert "features (40 MFCCs, float32): 641 MiB, IEMOCAP 511 of them" in out
    assert "= 25.1 CPU-h (81% of it in the 10 IEMOCAP scenarios); longest trial 0.39 h" in out
    assert "     20      no         502 |   295.5    73.9    18.5    36.9     9.2     2.3" in out
