"""Flax NNX layers that own parameters and running statistics and call ops."""

from jaxbp.nn import initializers
from jaxbp.nn.dropout import Dropout
from jaxbp.nn.functional import (
    ACTIVATIONS,
    VJPS,
    avg_pool2d,
    check_vjp_mode,
    elu,
    global_avg_pool,
    leaky_relu,
    listen,
    max_pool2d,
    relu,
    select,
    sigmoid,
    tanh,
)
from jaxbp.nn.initializers import KERNEL_INITS
from jaxbp.nn.layers import Conv, Linear
from jaxbp.nn.norm import BatchNorm, LayerNorm

__all__ = [
    "ACTIVATIONS",
    "KERNEL_INITS",
    "VJPS",
    "BatchNorm",
    "Conv",
    "Dropout",
    "LayerNorm",
    "Linear",
    "avg_pool2d",
    "check_vjp_mode",
    "elu",
    "global_avg_pool",
    "initializers",
    "leaky_relu",
    "listen",
    "max_pool2d",
    "relu",
    "select",
    "sigmoid",
    "tanh",
]
