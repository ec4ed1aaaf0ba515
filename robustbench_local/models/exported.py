"""`export:PATH.pt2`: torch.export programs, including ones exported with a static batch size."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError
from ..specs import Spec
from .archive import check_pt2_members, not_an_export
from .checkpoint import error_reason, existing_file
from .classifier import Classifier


class ExportedNet(nn.Module):
    """Holds `ExportedProgram.module()`, whose train()/eval() raise: its mode was fixed when it was exported."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def train(self, mode: bool = True) -> ExportedNet:
        """Set every submodule's flag directly: the exported graph's own train()/eval() raise."""
        for module in self.modules():
            module.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


class FixedBatch(ExportedNet):
    """Runs a module that accepts only batches of `batch` by splitting and zero-padding the last chunk."""

    def __init__(self, module: nn.Module, batch: int) -> None:
        super().__init__(module)
        self.batch = batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for chunk in x.split(self.batch):
            pad = self.batch - len(chunk)
            out = self.module(F.pad(chunk, (0, 0, 0, 0, 0, 0, 0, pad)) if pad else chunk)
            outs.append(out[: len(chunk)])
        return torch.cat(outs)


EXPORT_LOGGERS = ("torch.export.", "torch._export.")


class _Collect(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        cause = record.exc_info[1] if record.exc_info else None  # log.exception(...): the cause is the exception
        self.lines.append(error_reason(cause) if cause is not None else record.getMessage().strip().split("\n")[0])


@contextmanager
def _torch_export_warnings() -> Iterator[list[str]]:
    """Collect the warnings torch.export logs (with tracebacks) to stderr, so errors stay on one line.

    torch gives some of its modules' loggers their own stderr handler: each logger under torch.export and
    torch._export is redirected, not just the two parents.
    """
    names = {"torch.export", "torch._export", *(n for n in logging.root.manager.loggerDict if n.startswith(EXPORT_LOGGERS))}
    loggers, lines = [logging.getLogger(name) for name in sorted(names)], []
    saved = [(logger.handlers, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.handlers, logger.propagate = [_Collect(lines)], False
    try:
        yield lines
    finally:
        for logger, (handlers, propagate) in zip(loggers, saved):
            logger.handlers, logger.propagate = handlers, propagate


def _input_shape(program: torch.export.ExportedProgram) -> tuple:
    user_inputs = set(program.graph_signature.user_inputs)
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in user_inputs:
            return tuple(node.meta["val"].shape)
    raise ModelError("the exported program takes no tensor input; export the model with an image batch")


def load_export(spec: Spec, trust: bool) -> Classifier:
    """A torch.export archive; unless `trust`, only one whose members hold nothing to unpickle (see archive.py)."""
    from .loaders import _int, normalisation

    path = existing_file(spec.target, "exported program", "pass the .pt2 file written by torch.export.save")
    if not trust:
        check_pt2_members(path)
    with _torch_export_warnings() as warnings:
        try:
            program = torch.export.load(str(path))
        except Exception as exc:  # noqa: BLE001  (torch.export raises many types for a bad archive)
            raise not_an_export(path, warnings[0] if warnings else error_reason(exc)) from None
    shape = _input_shape(program)
    batch = shape[0]
    module = FixedBatch(program.module(), batch) if isinstance(batch, int) else ExportedNet(program.module())
    mean, std = normalisation(spec, None)
    return Classifier(module, _int(spec, "num_classes", None), mean, std, tuple(int(s) for s in shape[-2:]), None,
                      str(spec))
