"""The seeds' models: MLPs, VGG (Table 1) and the PyTorch-tutorial ConvNet."""

from jaxbp.models.convnets import VGG, VGG_TABLE1, ConvBNReLU, SmallConvNet
from jaxbp.models.mlp import MLP
from jaxbp.models.summary import summary

__all__ = ["MLP", "VGG", "VGG_TABLE1", "ConvBNReLU", "SmallConvNet", "summary"]
