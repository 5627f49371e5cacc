"""Model builders: sizes come from the data and the loss; the CNN infers its flattened size."""

import pytest
import torch
from torch import nn

from multiclass.errors import UserError
from multiclass.models import cnn, mlp


def linear_shapes(model: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]


def test_mlp_depth_and_width():
    model = mlp((2,), 4, depth=3, width=16)
    assert linear_shapes(model) == [(2, 16), (16, 16), (16, 16), (16, 4)]


def test_mlp_hidden_list_wins_over_depth_and_width():
    model = mlp((1, 28, 28), 10, depth=5, width=3, hidden=[256, 128, 64])
    assert linear_shapes(model) == [(784, 256), (256, 128), (128, 64), (64, 10)]


def test_empty_hidden_list_is_softmax_regression():
    assert linear_shapes(mlp((1, 28, 28), 10, hidden=[])) == [(784, 10)]


def test_mlp_activation_and_dropout():
    model = mlp((4,), 3, depth=2, width=8, activation="tanh", dropout=0.5)
    kinds = [type(m) for m in model]
    assert kinds.count(nn.Tanh) == 2 and kinds.count(nn.Dropout) == 2


def test_cnn_infers_the_flattened_size():
    # Seed 002: Conv2d(1,16,5)-ReLU-MaxPool(2)-Flatten-Linear(2304, k).
    model = cnn((1, 28, 28), 3, channels=[16], kernel_size=5, padding=0, pool=2)
    assert linear_shapes(model) == [(2304, 3)]
    # Seed 004: two blocks of 64 channels, 5x5, max-pool: Linear(1024, 10).
    model = cnn((1, 28, 28), 10, channels=[64, 64], kernel_size=5, padding=0, pool=2)
    assert linear_shapes(model) == [(1024, 10)]
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: cnn((2,), 2), "needs image inputs"),
        (lambda: cnn((1, 8, 8), 2, channels=[8, 8, 8], kernel_size=5, padding=0), "too small"),
        (lambda: mlp((2,), 2, activation="swish"), "model.activation must be one of"),
        (lambda: mlp((2,), 2, depth=-1), "model.depth must be an integer >= 0"),
        (lambda: mlp((2,), 2, hidden=[8, 0]), r"model.hidden must be a list of integers >= 1"),
        (lambda: mlp((2,), 2, dropout=1.5), "model.dropout"),
    ],
)
def test_bad_model_options_are_refused(build, message):
    with pytest.raises(UserError, match=message):
        build()
