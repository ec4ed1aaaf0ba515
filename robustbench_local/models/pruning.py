"""Pruning of a float network: global unstructured magnitude pruning (torch.nn.utils.prune) and structured channel
pruning (torch-pruning), and the per-layer channel plan that rebuilds a channel-pruned architecture.

Channel pruning removes whole output channels of every convolution and linear layer but the output layer, together
with everything coupled to them (batch norms, the next layers' inputs, residual additions: torch-pruning's dependency
graph), so the network itself gets smaller. Each group of coupled channels keeps `int(C · (1 - amount))` of its C
channels (torch-pruning's local rule, rounded down), those with the largest group L1 norm (the mean over the group's
conv, linear and batch-norm weights of each channel's absolute sum).
"""
from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import torch
from torch import nn

from ..errors import ModelError
from .classifier import Classifier

PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
EXAMPLE_SIDE = 32  # the example input traced for the dependency graph when the model fixes no input size


def prunable_weights(net: nn.Module) -> list[nn.Module]:
    """The convolution and linear layers whose weights pruning zeroes (biases and norms are kept)."""
    return [m for m in net.modules() if isinstance(m, PRUNABLE)]


def prune_global(net: nn.Module, amount: float) -> None:
    """Zero the `amount` fraction of smallest-magnitude weights over all conv/linear layers together, permanently."""
    from torch.nn.utils import prune

    layers = prunable_weights(net)
    if not layers:
        raise ModelError("the model has no convolution or linear layers to prune")
    prune.global_unstructured([(m, "weight") for m in layers], pruning_method=prune.L1Unstructured, amount=amount)
    for layer in layers:
        prune.remove(layer, "weight")


def finetune_pruned(model: Classifier, train: Callable[[Classifier], object]) -> None:
    """Run `train(model)` with the pruned (zero) conv/linear weights held at zero by masks, then drop the masks."""
    from torch.nn.utils import prune

    layers = prunable_weights(model.net)
    for layer in layers:
        prune.custom_from_mask(layer, "weight", layer.weight != 0)
    train(model)
    for layer in layers:
        prune.remove(layer, "weight")


def weight_stats(net: nn.Module) -> dict[str, int | float]:
    """Parameter count, and the zero weights and sparsity of the conv/linear weights, of a float network."""
    weights = [m.weight for m in prunable_weights(net)]
    total = sum(w.numel() for w in weights)
    zeros = sum(int((w == 0).sum()) for w in weights)
    return {"parameters": sum(p.numel() for p in net.parameters()), "prunable_weights": total,
            "zero_weights": zeros, "sparsity": zeros / total if total else 0.0}


def torch_pruning() -> ModuleType:
    """The torch-pruning library, or a one-line error naming the extra that installs it."""
    try:
        import torch_pruning as tp
    except ImportError:
        raise ModelError("channel pruning needs torch-pruning; install the extra: "
                         "pip install 'robustbench-local[compress]'") from None
    return tp


def example_input(model: Classifier) -> torch.Tensor:
    """A normalised zero image of the model's input size (32 px when it fixes none) to trace the dependency graph."""
    side = model.input_size or (EXAMPLE_SIDE, EXAMPLE_SIDE)
    return model._normalise(torch.zeros(1, 3, *side, device=model.device))


def output_layers(net: nn.Module, x: torch.Tensor) -> list[nn.Module]:
    """The conv/linear layers whose output is the network's output (the logits): their channels are the classes."""
    outputs: dict[nn.Module, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda m, _, out: outputs.__setitem__(m, out)) for m in prunable_weights(net)]
    try:
        with torch.no_grad():
            logits = net(x)
    finally:
        for hook in hooks:
            hook.remove()
    return [m for m, out in outputs.items() if out.data_ptr() == logits.data_ptr()]


def channel_plan(net: nn.Module) -> dict[str, int]:
    """The output channels of each conv/linear layer by module name: what a channel-pruned architecture keeps."""
    return {name: m.weight.shape[0] for name, m in net.named_modules() if isinstance(m, PRUNABLE)}


def prune_channels(model: Classifier, amount: float) -> None:
    """Remove the `amount` fraction of output channels of each group of coupled channels (rounded as in the module
    docstring) from `model.net` in place, by group L1 magnitude, keeping the output layer whole."""
    tp = torch_pruning()
    net, x = model.net, example_input(model)
    heads = output_layers(net, x)
    if not heads:
        raise ModelError(f"cannot find the output layer of {model.name} (no conv/linear layer returns the logits); "
                         "channel pruning keeps it whole, so use --method prune")
    for name, channels in channel_plan(net).items():
        module = net.get_submodule(name)
        if module not in heads and int(channels * (1 - amount)) < 1:
            raise ModelError(f"pruning {amount} of the channels would leave none of the {channels} of layer {name}; "
                             "use a smaller --amount")
    importance = tp.importance.MagnitudeImportance(p=1, group_reduction="mean", normalizer=None)
    was_training = net.training
    net.eval()
    tp.pruner.MagnitudePruner(net, x, importance=importance, pruning_ratio=amount, ignored_layers=heads).step()
    net.train(was_training)


def rebuild_channel_pruned(model: Classifier, plan: dict[str, int]) -> None:
    """Give `model.net` (the unpruned source architecture) the channel counts of `plan` by removing trailing channels
    through the dependency graph, so that the channel-pruned weights load into it."""
    tp = torch_pruning()
    net = model.net
    graph = tp.DependencyGraph().build_dependency(net, example_inputs=example_input(model))
    current = channel_plan(net)
    if current.keys() != plan.keys():
        raise ModelError("the card's channel plan names other layers than its source architecture; compress the "
                         "model again")
    for name, keep in plan.items():
        module = net.get_submodule(name)
        channels = module.weight.shape[0]
        if not 1 <= keep <= channels:
            raise ModelError(f"the card keeps {keep} channels of layer {name}, which has {channels}; compress the "
                             "model again")
        if keep < channels:
            handler = graph.get_pruner_of_module(module).prune_out_channels
            graph.get_pruning_group(module, handler, idxs=list(range(keep, channels))).prune()
    if channel_plan(net) != plan:
        raise ModelError("the card's channel plan does not fit its source architecture's coupled layers; compress "
                         "the model again")
