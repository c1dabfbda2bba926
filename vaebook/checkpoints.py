"""Checkpoints: save a model (its class, config and weights) and rebuild it from the file.

A checkpoint stores the model's class name and its frozen config (:mod:`vaebook.models`), so
:func:`load` rebuilds the same architecture before it loads the weights; nothing in the file is
executed (``torch.load(weights_only=True)``). Writes are atomic (:mod:`vaebook.files`).

It stands beside the models, below training: :mod:`vaebook.metrics` loads its shipped classifier
from here without importing the training loop.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .files import atomic_write, remove_stale_temporaries
from .guards import check_device, describe
from .configs import AEConfig, ClassifierConfig, SRConfig, VAEConfig
from .models import VAE, Autoencoder, DigitClassifier, SuperResolver

__all__ = ["MODEL_CLASSES", "build_model", "save", "load", "CheckpointError"]

CHECKPOINT_FORMAT = "vaebook-checkpoint"
CHECKPOINT_VERSION = 1

# The models a checkpoint can hold: class name -> (class, config class).
MODEL_CLASSES: dict[str, tuple[type[nn.Module], Any]] = {
    "Autoencoder": (Autoencoder, AEConfig),
    "VAE": (VAE, VAEConfig),
    "SuperResolver": (SuperResolver, SRConfig),
    "DigitClassifier": (DigitClassifier, ClassifierConfig),
}


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt, or does not match the model it claims to hold."""


def build_model(class_name: str, config: dict) -> nn.Module:
    """Rebuild a model from its class name and config dict (what a checkpoint stores)."""
    if class_name not in MODEL_CLASSES:
        raise ValueError(f"class_name: expected one of {sorted(MODEL_CLASSES)}, got {class_name!r}")
    cls, cfg_cls = MODEL_CLASSES[class_name]
    return cls(cfg_cls.from_dict(config))


def save(model: nn.Module, path: str | os.PathLike) -> Path:
    """Save ``model`` (its class, config and weights) to ``path``, atomically; return the path.

    The file is written beside ``path`` under a temporary name and renamed into place, so a crash
    (even ``kill -9``) never leaves a half-written checkpoint, and the temporary files of earlier
    killed saves are removed. Load it with :func:`load`.
    """
    name = type(model).__name__
    if name not in MODEL_CLASSES or type(model) is not MODEL_CLASSES[name][0]:
        raise TypeError(f"model: expected a vaebook model ({', '.join(sorted(MODEL_CLASSES))}), got a {name}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path (str or Path), got a {type(path).__name__}")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "class": name,
        "config": model.config.to_dict(),  # type: ignore[union-attr, operator]  # every vaebook model has a config
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    return atomic_write(path, lambda f: torch.save(payload, f))


def load(path: str | os.PathLike, map_location: str | torch.device | None = "cpu") -> nn.Module:
    """Rebuild a model saved by :func:`save`: its class from the file, its config, then its weights.

    Reads with ``weights_only=True`` (no code in the file is run). A missing, corrupt or
    mismatched file raises :class:`CheckpointError` saying what is wrong. Temporary files left
    beside it by killed saves are removed.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path (str or Path), got a {type(path).__name__}")
    path = Path(path)
    remove_stale_temporaries(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}" + (" (it is a folder)" if path.is_dir() else ""))
    if map_location is not None and not callable(map_location) and not isinstance(map_location, dict):
        check_device("map_location", map_location)  # a bad device is the caller's mistake, not the file's
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path} is not a readable vaebook checkpoint (corrupt or truncated?): {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a vaebook checkpoint (expected a dict with format={CHECKPOINT_FORMAT!r})")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {payload.get('version')!r}; this vaebook reads version {CHECKPOINT_VERSION}"
        )
    try:
        model = build_model(payload["class"], payload["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path} holds a model that cannot be rebuilt: {err}") from err
    if not isinstance(payload.get("state_dict"), dict):
        raise CheckpointError(f"{path}: expected its 'state_dict' to be a dict of tensors, got {describe(payload.get('state_dict'))}")
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except (KeyError, RuntimeError) as err:
        raise CheckpointError(
            f"{path}: the weights do not match a {payload['class']} with config {payload['config']}: {err}"
        ) from err
    model.eval()
    return model
