"""nnhp.schedules against torch.optim.lr_scheduler (committed reference rates) and Keras's formulas."""
import json
import math
import os

import numpy as np
import pytest

from nnhp import schedules

REFERENCE = os.path.join(os.path.dirname(__file__), "reference", "schedules_reference.npz")
DATA = np.load(REFERENCE, allow_pickle=False)
CASES = {case["name"]: case for case in json.loads(str(DATA["cases"]))}
BASE_LR = float(DATA["base_lr"])


def ours_for(case):
    """The nnhp schedule that mirrors one torch scheduler case."""
    kwargs = dict(case["kwargs"])
    kind = case["scheduler"]
    if kind == "StepLR":
        return schedules.StepDecay(kwargs["step_size"], kwargs["gamma"])
    if kind == "MultiStepLR":
        return schedules.MultiStepDecay(kwargs["milestones"], kwargs["gamma"])
    if kind == "ExponentialLR":
        return schedules.ExponentialDecay(kwargs["gamma"])
    if kind == "CosineAnnealingLR":
        return schedules.CosineDecay(kwargs["T_max"], kwargs.get("eta_min", 0.0))
    if kind == "OneCycleLR":
        total, max_lr = kwargs.pop("total_steps"), kwargs.pop("max_lr")
        return schedules.OneCycle(total, max_lr, **kwargs)
    if kind == "ReduceLROnPlateau":
        return schedules.ReduceOnPlateau(**kwargs)
    raise AssertionError(kind)


STATELESS = sorted(name for name, case in CASES.items() if case["scheduler"] != "ReduceLROnPlateau")
PLATEAU = sorted(name for name, case in CASES.items() if case["scheduler"] == "ReduceLROnPlateau")


@pytest.mark.parametrize("name", STATELESS)
def test_rates_match_torch_scheduler(name):
    expected = DATA[f"{name}/lrs"]
    schedule = ours_for(CASES[name])
    ours = np.array([schedule(step, BASE_LR) for step in range(len(expected))])
    # torch multiplies recursively; the closed form differs by rounding only (atol for
    # cosine's exact zeros, where torch's recursion leaves ~1e-18).
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-12 * BASE_LR)


@pytest.mark.parametrize("name", PLATEAU)
def test_reduce_on_plateau_matches_torch(name):
    expected = DATA[f"{name}/lrs"]
    schedule = ours_for(CASES[name])
    ours = []
    for epoch, metric in enumerate(DATA["plateau_metrics"]):
        ours.append(schedule(epoch, BASE_LR))
        schedule.observe(metric)
    np.testing.assert_allclose(ours, expected, rtol=1e-12)
    assert len(np.unique(expected)) > 1  # the case really reduces


def test_reference_covers_cosine_past_t_max_and_onecycle_end():
    cosine = DATA["cosine/lrs"]
    t_max = CASES["cosine"]["kwargs"]["T_max"]
    assert len(cosine) > 2 * t_max and cosine[2 * t_max] > cosine[t_max]  # it rises again
    assert len(DATA["onecycle/lrs"]) == CASES["onecycle"]["kwargs"]["total_steps"] + 1


def test_cosine_is_periodic_not_clamped():
    schedule = schedules.CosineDecay(T_max=10, eta_min=0.01)
    assert schedule(10, 1.0) == pytest.approx(0.01)
    assert schedule(20, 1.0) == pytest.approx(1.0)
    assert schedule(15, 1.0) == pytest.approx(schedule(5, 1.0))


@pytest.mark.parametrize("staircase", [False, True])
@pytest.mark.parametrize("decay_steps", [1, 4, 10])
def test_exponential_decay_is_keras_formula(staircase, decay_steps):
    schedule = schedules.ExponentialDecay(0.9, decay_steps=decay_steps, staircase=staircase)
    for step in range(60):
        exponent = step // decay_steps if staircase else step / decay_steps
        assert schedule(step, 0.3) == pytest.approx(0.3 * 0.9 ** exponent, rel=1e-12)


@pytest.mark.parametrize("staircase", [False, True])
@pytest.mark.parametrize("decay_steps", [1, 7])
def test_inverse_time_decay_is_keras_formula(staircase, decay_steps):
    schedule = schedules.InverseTimeDecay(0.5, decay_steps=decay_steps, staircase=staircase)
    for step in range(60):
        progress = step // decay_steps if staircase else step / decay_steps
        assert schedule(step, 0.2) == pytest.approx(0.2 / (1 + 0.5 * progress), rel=1e-12)


def test_staircase_holds_the_rate_within_a_period():
    schedule = schedules.ExponentialDecay(0.5, decay_steps=5, staircase=True)
    assert {schedule(s, 1.0) for s in range(5)} == {1.0}
    assert schedule(5, 1.0) == 0.5


def test_warmup_cosine_ramps_then_decays():
    schedule = schedules.WarmupCosine(warmup_steps=4, T_max=20, eta_min=0.001)
    rates = [schedule(s, 0.1) for s in range(25)]
    assert rates[0] == pytest.approx(0.1 / 5) and rates[0] > 0
    assert np.all(np.diff(rates[:5]) > 0) and rates[4] == pytest.approx(0.1)
    assert np.all(np.diff(rates[4:21]) < 0) and rates[20] == pytest.approx(0.001)
    assert rates[24] == 0.001


def test_warmup_cosine_without_warmup_is_cosine_decay():
    a, b = schedules.WarmupCosine(0, 30, eta_min=0.01), schedules.CosineDecay(30, eta_min=0.01)
    for step in range(31):
        assert a(step, 0.5) == pytest.approx(b(step, 0.5), rel=1e-12)


def test_onecycle_ignores_base_lr_and_rejects_steps_past_total():
    schedule = schedules.OneCycle(total_steps=50, max_lr=0.4)
    assert schedule(0, 123.0) == pytest.approx(0.4 / 25)
    assert max(schedule(s, 1.0) for s in range(51)) == pytest.approx(0.4)
    assert schedule(49, 1.0) == pytest.approx(0.4 / 25 / 1e4)
    with pytest.raises(ValueError, match="total_steps"):
        schedule(51, 1.0)


def test_reduce_on_plateau_observed_before_first_call_applies_on_first_call():
    early = schedules.ReduceOnPlateau(factor=0.5, patience=0)
    late = schedules.ReduceOnPlateau(factor=0.5, patience=0)
    late(0, 1.0)
    for metric in [1.0, 1.0, 1.0]:
        early.observe(metric)
        late.observe(metric)
    assert early(3, 1.0) == late(3, 1.0) == 0.25


def test_reduce_on_plateau_state_dict_resumes():
    metrics = DATA["plateau_metrics"]
    kwargs = CASES["plateau_patience_cooldown"]["kwargs"]
    straight = schedules.ReduceOnPlateau(**kwargs)
    expected = []
    for epoch, metric in enumerate(metrics):
        expected.append(straight(epoch, BASE_LR))
        straight.observe(metric)
    first, rates = schedules.ReduceOnPlateau(**kwargs), []
    for epoch, metric in enumerate(metrics[:40]):
        rates.append(first(epoch, BASE_LR))
        first.observe(metric)
    state = json.loads(json.dumps(first.state_dict()))  # plain values only
    second = schedules.ReduceOnPlateau(**kwargs)
    second.load_state_dict(state)
    for epoch, metric in enumerate(metrics[40:], start=40):
        rates.append(second(epoch, BASE_LR))
        second.observe(metric)
    assert rates == expected


@pytest.mark.parametrize("factory", [
    lambda unit: schedules.Constant(unit=unit),
    lambda unit: schedules.StepDecay(3, unit=unit),
    lambda unit: schedules.OneCycle(10, 0.1, unit=unit),
    lambda unit: schedules.ReduceOnPlateau(unit=unit),
])
def test_unit_is_set_by_the_constructor(factory):
    assert factory("epoch").unit == "epoch" and factory("batch").unit == "batch"
    with pytest.raises(ValueError, match="unit"):
        factory("iteration")


def test_default_unit_is_epoch():
    assert schedules.CosineDecay(10).unit == "epoch"


@pytest.mark.parametrize("factory,error", [
    (lambda: schedules.StepDecay(0), ValueError),
    (lambda: schedules.StepDecay(2.5), TypeError),
    (lambda: schedules.StepDecay(3, gamma=-0.1), ValueError),
    (lambda: schedules.MultiStepDecay([3, -1]), ValueError),
    (lambda: schedules.ExponentialDecay(0.9, decay_steps=0), ValueError),
    (lambda: schedules.InverseTimeDecay(-1.0), ValueError),
    (lambda: schedules.CosineDecay(0), ValueError),
    (lambda: schedules.WarmupCosine(10, 10), ValueError),
    (lambda: schedules.OneCycle(0, 0.1), ValueError),
    (lambda: schedules.OneCycle(100, 0.1, pct_start=1.5), ValueError),
    (lambda: schedules.OneCycle(100, 0.1, anneal_strategy="cosine"), ValueError),
    (lambda: schedules.ReduceOnPlateau(factor=1.0), ValueError),
    (lambda: schedules.ReduceOnPlateau(mode="minimum"), ValueError),
    (lambda: schedules.ReduceOnPlateau(threshold_mode="relative"), ValueError),
    (lambda: schedules.ReduceOnPlateau(patience=-1), ValueError),
])
def test_invalid_arguments_are_clear_errors(factory, error):
    with pytest.raises(error):
        factory()


def test_negative_step_or_base_lr_is_an_error():
    with pytest.raises(ValueError, match="step"):
        schedules.Constant()(-1, 0.1)
    with pytest.raises(ValueError, match="base_lr"):
        schedules.Constant()(0, -0.1)


def test_get_by_name_class_name_and_instance():
    assert isinstance(schedules.get("cosine", T_max=5), schedules.CosineDecay)
    assert isinstance(schedules.get("CosineDecay", T_max=5), schedules.CosineDecay)
    assert isinstance(schedules.get("reduce_on_plateau"), schedules.ReduceOnPlateau)
    assert isinstance(schedules.get("warmup-cosine", warmup_steps=1, T_max=5), schedules.WarmupCosine)
    schedule = schedules.Constant()
    assert schedules.get(schedule) is schedule and schedules.get(None) is None
    with pytest.raises(ValueError) as info:
        schedules.get("linear")
    assert "cosine" in str(info.value) and "onecycle" in str(info.value)


def test_rates_are_python_floats():
    for schedule in [schedules.StepDecay(2), schedules.CosineDecay(5), schedules.OneCycle(10, 0.1)]:
        assert type(schedule(np.int64(3), np.float32(0.1))) is float
    assert math.isclose(schedules.Constant()(7, 0.25), 0.25)


# --- schedules inside nnhp.fit --------------------------------------------------------
def test_fit_with_a_batch_schedule_records_each_epochs_first_rate(small_classification):
    import nnhp

    X, y = small_classification
    batch_size, epochs = 16, 4
    n_batches = -(-len(X) // batch_size)
    schedule = schedules.OneCycle(total_steps=epochs * n_batches, max_lr=0.05, unit="batch")
    optimizer = nnhp.optim.SGD(lr=0.01, momentum=0.9)
    history = nnhp.fit(nnhp.MLP([6, 8, 3], seed=0), X, y, optimizer=optimizer, schedule=schedule,
                       epochs=epochs, batch_size=batch_size, seed=0)
    expected = [schedule(epoch * n_batches, 0.01) for epoch in range(epochs)]
    assert history.history["lr"] == pytest.approx(expected, rel=1e-12)
    assert optimizer.lr == pytest.approx(schedule(epochs * n_batches - 1, 0.01))


def test_fit_with_an_epoch_schedule_scales_the_optimizers_initial_lr(small_classification):
    import nnhp

    X, y = small_classification
    optimizer = nnhp.optim.Adam(lr=0.02)
    history = nnhp.fit(nnhp.MLP([6, 8, 3], seed=0), X, y, optimizer=optimizer,
                       schedule=schedules.CosineDecay(T_max=4, unit="epoch"), epochs=5, batch_size=32, seed=0)
    expected = [0.02 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(5)]
    assert history.history["lr"] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert optimizer.initial_lr == 0.02


def test_fit_with_reduce_on_plateau_cuts_the_rate_when_the_loss_stalls(small_classification):
    import nnhp

    X, y = small_classification
    # A tiny rate and a 50% relative threshold: no epoch after the first counts as better.
    optimizer = nnhp.optim.SGD(lr=1e-4)
    schedule = schedules.ReduceOnPlateau(factor=0.5, patience=1, threshold=0.5)
    history = nnhp.fit(nnhp.MLP([6, 8, 3], seed=0), X, y, optimizer=optimizer, schedule=schedule,
                       epochs=6, batch_size=32, seed=0)
    # epoch 0 sets best; bad epochs 1, 2 -> reduce after epoch 2; bad 3, 4 -> reduce after 4.
    assert history.history["lr"] == pytest.approx([1e-4, 1e-4, 1e-4, 5e-5, 5e-5, 2.5e-5])
