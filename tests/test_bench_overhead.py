"""Seconds per training step, every optimizer measured side by side."""
from nnhp.bench.overhead import step_seconds
from nnhp.bench.workloads import Workload

TINY = Workload("tiny", "moons, 8 tanh units", "moons", (8,), activation="tanh", batch_size=32, epochs=3,
                data_options=(("n_samples", 200), ("noise", 0.2)))


def test_every_optimizer_gets_a_positive_time_per_step():
    seconds = step_seconds(TINY, ["sgd", "adam", "adadelta"], rounds=3)
    assert list(seconds) == ["sgd", "adam", "adadelta"]
    assert all(0 < value < 0.1 for value in seconds.values())


def test_protocol_records_step_seconds_and_the_result_their_ratio_to_sgd():
    from nnhp.bench import Budget, benchmark_optimizers
    result = benchmark_optimizers([TINY], ["sgd", "adam"], Budget(studies=1, trials=1, seeds=1, lr_factors=(1.0,)))
    sgd, adam = result.row("tiny", "sgd"), result.row("tiny", "adam")
    assert sgd["overhead_vs_sgd"] == 1.0
    assert adam["overhead_vs_sgd"] == adam["seconds_per_step"] / sgd["seconds_per_step"]
