"""Neural-network pieces shared by the articles."""

from torch import nn


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def keras_init(model: nn.Module) -> None:
    """Keras defaults, as in Su's code: Glorot-uniform kernels, zero biases. PyTorch's fans for a
    Conv1d weight (out, in, k) equal Keras's (k*in, k*out)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
