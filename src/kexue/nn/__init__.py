"""Neural-network pieces shared by the articles."""

from torch import nn


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def keras_init(model: nn.Module) -> None:
    """Keras defaults, as in Su's code: Glorot-uniform kernels, zero biases (layers built with
    ``bias=False`` have none), embeddings U[-0.05, 0.05]. PyTorch's fans for a Conv1d weight
    (out, in, k) equal Keras's (k*in, k*out)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.uniform_(m.weight, -0.05, 0.05)
