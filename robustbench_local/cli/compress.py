"""`rbl compress`: int8 quantisation, magnitude pruning or channel pruning of a model into a directory `rbl evaluate`
loads."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import SpecError
from ..model_catalog import COMPRESSION, COMPRESSION_METHODS, OPTIONS, PRUNE_METHODS
from ..parsing import check_amount
from ..specs import Spec, parse_spec
from .app import OutputDir, cli


@cli.command("compress")
@click.argument("model")
@click.option("--method", type=click.Choice(COMPRESSION_METHODS), required=True,
              help="int8-dynamic: Linear layers int8 (torch.ao); int8-static: conv and linear int8 with activation "
                   "ranges calibrated on --data's val split (torch.ao FX, x86); prune: global magnitude pruning (weights set to "
                   "zero); prune-channels: structured pruning that removes whole channels (torch-pruning), so the "
                   "network gets smaller.")
@click.option("--out", type=OutputDir(), required=True, help="Output directory.")
@click.option("--amount", help="prune: the fraction of conv/linear weights set to zero; prune-channels: the "
              "fraction of each layer's output channels removed (the output layer is kept); in (0, 1).")
@click.option("--data", help="Data spec: its val split calibrates int8-static; its test split gives the accuracy "
              "before and after in the card.")
@click.option("--calibration-size", type=click.IntRange(min=1), default=512, show_default=True,
              help="int8-static: the number of val images that calibrate the activation ranges.")
@click.option("--finetune-epochs", type=click.IntRange(min=1), help="prune, prune-channels: fine-tune this many "
              "epochs on --data's train split (pruned weights held at zero), keeping the epoch with the best val "
              "accuracy.")
@click.option("--finetune-lr", type=float, default=0.01, show_default=True, help="Peak learning rate of the "
              "fine-tuning (one-cycle schedule, SGD with Nesterov momentum).")
@click.option("--arch", help="Architecture spec when MODEL is a bare weights file.")
@click.option("--trust-checkpoint", is_flag=True, help="Allow pickled checkpoints (only files you trust).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds weights the spec does not load.")
@click.pass_context
def compress_cmd(ctx: click.Context, model, method, out, amount, data, calibration_size, finetune_epochs, finetune_lr,
                 arch, trust_checkpoint, seed) -> None:
    """Write a compressed copy of MODEL to OUT (the network and card.json); evaluate it with `rbl evaluate OUT`.

    The card records the method and its settings, the source model and its fingerprint, the size on disk, the
    parameter count and the sparsity of the conv/linear weights. int8 models run on the CPU. prune-channels keeps
    int(C·(1-amount)) of the C channels of each group of coupled layers (needs the `compress` extra, torch-pruning);
    its card lists the channels kept per layer, which rebuild the smaller architecture from the source spec.

    \b
    Examples:
      rbl compress builtin:digits-cnn --method int8-static --data builtin:digits --out runs/int8
      rbl compress builtin:digits-cnn --method prune --amount 0.5 --out runs/pruned50
      rbl compress builtin:digits-cnn --method prune-channels --amount 0.5 --data builtin:digits \\
          --finetune-epochs 2 --out runs/channels50
      rbl evaluate runs/int8 --data builtin:digits --suite clean --out runs/int8-clean
    """
    if method in PRUNE_METHODS:
        amount_value = check_amount(amount, "--amount")
    elif amount is not None:
        raise SpecError(f"--amount applies to --method prune and prune-channels only; drop it for {method}")
    if method == "int8-static" and data is None:
        raise SpecError("--method int8-static calibrates on a val split; pass --data (e.g. --data builtin:digits)")
    if finetune_epochs and (method not in PRUNE_METHODS or data is None):
        raise SpecError("--finetune-epochs fine-tunes a pruned model on --data's train split; use it with "
                        "--method prune or prune-channels, and --data")
    if finetune_epochs and (Path(out) / "finetune").exists():
        raise SpecError(f"{Path(out) / 'finetune'} holds an earlier fine-tuning, which would be resumed on another "
                        "pruned model; use another --out or remove it")
    if (Path(model) / "card.json").is_file():
        raise SpecError(f"{model} is already compressed; compress its source model instead")

    from ..data import load_data
    from ..models import load_model
    from ..models.compress import calibration_batches, compress, save_compressed
    from ..models.pruning import weight_stats
    from ..training import accuracy

    source = load_model(model, arch, trust_checkpoint, device="cpu", seed=seed)
    if method == "prune" and "prune_channels" in parse_spec(arch or model, "model", OPTIONS).options:
        raise SpecError(f"{arch or model} is channel-pruned inline, an architecture a --method prune card cannot "
                        "rebuild; use --method prune-channels, or evaluate the spec with &prune=AMOUNT added")
    calibration = None
    if method == "int8-static":
        calibration = calibration_batches(load_data(data, "val"), calibration_size)
    compressed = compress(source, method, amount_value if method in PRUNE_METHODS else None, calibration)
    if finetune_epochs:
        _finetune(compressed, method, data, Path(out) / "finetune", finetune_epochs, finetune_lr, seed,
                  ctx.obj["quiet"])
    float_net = source.net if method.startswith("int8") else compressed.net
    settings = _settings(method, amount, data, calibration_size)
    if finetune_epochs:
        settings["finetune"] = {"epochs": finetune_epochs, "lr": finetune_lr, "data": f"{data} train",
                                "log": "finetune/log.csv"}
    card = {"method": method, "settings": settings,
            "source": model, "source_fingerprint": source.fingerprint, "arch": arch or _source_arch(model), "seed": seed,
            **weight_stats(float_net), "source_parameters": weight_stats(source.net)["parameters"]}
    if data is not None:
        test = load_data(data, "test")
        card["test_accuracy"] = {"source": accuracy(source, test), "compressed": accuracy(compressed, test)}
    card = save_compressed(compressed, Path(out), card)
    accuracy_line = (f"; test accuracy {card['test_accuracy']['source']:.4f} -> "
                     f"{card['test_accuracy']['compressed']:.4f}" if "test_accuracy" in card else "")
    click.echo(f"{method}: {card['size_bytes']} bytes, {card['parameters']} parameters (source "
               f"{card['source_parameters']}), sparsity "
               f"{card['sparsity']:.4f}{accuracy_line}; evaluate with `rbl evaluate {out} --data ...`")


def _finetune(model, method: str, data: str, out: Path, epochs: int, lr: float, seed: int, quiet: bool) -> None:
    """Fine-tune a pruned model in place on `data`'s train split (weights zeroed by `prune` held at zero, a
    channel-pruned network as it is); keep the best epoch by val accuracy (the run, log and checkpoints stay in
    `out`)."""
    from ..data import load_data
    from ..models.pruning import finetune_pruned
    from ..progress import Progress
    from ..train_config import TrainConfig
    from ..training import load_weights_into, train

    config = TrainConfig(epochs=epochs, lr=lr, seed=seed)
    train_set, val_set = load_data(data, "train"), load_data(data, "val")

    def run(net) -> None:
        train(net, train_set, val_set, config, out, card={"data": data, "purpose": "fine-tuning after pruning"},
              progress=Progress(quiet))
        load_weights_into(net, out / "best.safetensors")

    if method == "prune":
        finetune_pruned(model, run)
    else:
        run(model)


def _settings(method: str, amount: str | None, data: str | None, calibration_size: int) -> dict:
    if method == "prune":
        return {"amount": float(amount), "scope": "global", "criterion": "L1 magnitude", "layers": "conv, linear"}
    if method == "prune-channels":
        from importlib.metadata import version

        return {"amount": float(amount), "scope": "each group of coupled channels",
                "kept": "int(C * (1 - amount)) of a group's C channels", "criterion": "group L1 magnitude (mean over "
                "the group's conv, linear and batch-norm weights)", "layers": "conv, linear but the output layer",
                "library": f"torch-pruning {version('torch-pruning')}"}
    if method == "int8-dynamic":
        return {"layers": "linear", "weights": "qint8 per tensor", "backend": "x86", "library": "torch.ao"}
    return {"layers": "conv, linear", "qconfig": "x86 default", "calibration": f"{data} val, {calibration_size} images",
            "library": "torch.ao.quantization.quantize_fx"}


def _source_arch(model: str) -> str:
    """The source spec without its weights and the compression options that change weights only: where a pruned
    state dict goes (?prune_channels= stays, as it makes the architecture the weights fit)."""
    parsed = parse_spec(model, "model", OPTIONS)
    drop = ("weights", *(option for option in COMPRESSION if option != "prune_channels"))
    keep = {k: v for k, v in parsed.options.items() if k not in drop}
    return str(Spec(parsed.scheme, parsed.target, keep))
