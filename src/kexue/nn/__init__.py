"""Neural-network pieces shared by the articles."""

from torch import nn


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def keras_init(model: nn.Module) -> None:
    """Keras defaults, as in Su's code: Glorot-uniform kernels, zero biases (layers built with
    ``bias=False`` have none). PyTorch's fans for a Conv1d/Conv2d weight (out, in, *k) equal
    Keras's (prod(k)*in, prod(k)*out). Embeddings: uniform(-0.05, 0.05). GRUs: Glorot-uniform input kernel (the
    3h x in matrix as a whole, Keras's limit), orthogonal recurrent kernel, zero biases."""
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.uniform_(m.weight, -0.05, 0.05)
        elif isinstance(m, nn.GRU):
            for name, p in m.named_parameters():
                if name.startswith("weight_ih"):
                    nn.init.xavier_uniform_(p)
                elif name.startswith("weight_hh"):
                    nn.init.orthogonal_(p)
                else:
                    nn.init.zeros_(p)
