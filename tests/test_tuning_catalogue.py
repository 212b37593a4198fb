"""nnhp/tuning/catalogue.py: the names tune knows, their values and when they count (issue 12)."""
import pytest

from nnhp.search import Choice, Float, Int, Space
from nnhp.tuning import catalogue, default_space


def test_every_name_the_default_spaces_use_is_in_the_catalogue():
    for kwargs in ({}, {"extended": True}, {"task": "regression"}, {"n_classes": 2, "budgeted": True}):
        for name in default_space(**kwargs):
            assert catalogue.lookup(name) is not None, name


@pytest.mark.parametrize("name, hint", [("dropuot", "did you mean 'dropout'"), ("learning_rate", "did you mean 'lr'"),
                                        ("units_0", "units_<k>"), ("foo", "nnhp tunes n_layers")])
def test_an_unknown_name_lists_the_valid_ones(name, hint):
    with pytest.raises(ValueError, match=f"unknown hyperparameter '{name}'.*{hint}"):
        catalogue.check_name(name)


def test_units_of_any_layer_are_known_and_conditioned_on_the_depth():
    entry = catalogue.lookup("units_12")
    assert entry.kind == "int" and entry.when == ("n_layers", ">=", 12)


def test_conditions_are_added_where_the_engine_reads_a_name_only_sometimes():
    space = catalogue.check_space(Space({"optimizer": Choice(["sgd", "adam"]), "momentum": Float(0.5, 0.9),
                                         "adam_lr": Float(1e-4, 1e-2, log=True), "n_layers": Int(1, 3),
                                         "units_2": Int(8, 16), "schedule": Choice(["step", "cosine"]),
                                         "step_gamma": Float(0.1, 0.5), "l2": Float(1e-5, 1e-3)}))
    assert str(space["momentum"].when[0]) == "optimizer in ['sgd', 'rmsprop']"
    assert str(space["adam_lr"].when[0]) == "optimizer == 'adam'"
    assert str(space["units_2"].when[0]) == "n_layers >= 2"
    assert str(space["step_gamma"].when[0]) == "schedule == 'step'"
    assert not space["l2"].when                    # without a penalty choice, l2 always counts


def test_a_users_own_condition_is_kept():
    space = catalogue.check_space(Space({"n_layers": Int(1, 3), "units_2": Int(8, 16, when=("n_layers", "==", 3))}))
    assert str(space["units_2"].when[0]) == "n_layers == 3"


def test_a_name_whose_parent_stays_at_a_default_that_ignores_it_is_an_error():
    with pytest.raises(ValueError, match="'nesterov' is used only when optimizer == 'sgd', but the space leaves "
                                         "'optimizer' at its default 'adam'"):
        catalogue.check_space(Space({"nesterov": True}))
    with pytest.raises(ValueError, match="'units_2' is used only when n_layers >= 2"):
        catalogue.check_space(Space({"units_2": 8}))


@pytest.mark.parametrize("dims, message", [
    ({"dropout": 1.0}, r"'dropout' must be a finite number >= 0.0 and < 1.0"),
    ({"nesterov": "yes", "optimizer": "sgd"}, "'nesterov' must be true or false"),
    ({"hidden": "128,0"}, "'hidden' must be positive layer widths"),
    ({"optimizer": Choice(["adam", "lbfgs"])}, "unknown optimizer 'lbfgs'"),
    ({"epochs": Int(0, 10)}, "'epochs' must be an integer >= 1; got 0"),
    ({"activation": Int(1, 3)}, "'activation' takes names or flags"),
])
def test_values_are_checked_for_every_option_and_both_ends_of_a_range(dims, message):
    with pytest.raises(ValueError, match=message):
        catalogue.check_space(Space(dims))
