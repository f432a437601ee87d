"""Encoders by name: the one table that model configs are checked against and networks are built from.

A weights file names its encoder in its config (``"efficientnet_lite0"``), so the name is the stable key;
the class behind it is found here. Everything else about an encoder (its channels, where its ImageNet
weights come from, the tensors that inference never needs, its conv/BN pairs) is declared by the class
itself (:class:`mattecli.models.encoders.Encoder`), so adding a backbone is one class and one registration::

    @register_encoder("my_backbone")
    class MyBackbone(Encoder):
        channels = (16, 24, 40, 112, 320)
        ...

This module imports nothing heavy: :mod:`mattecli.models.config`, which every CLI start imports, validates encoder
names against it, and torch must stay unimported until a network is built. The built-in encoders are
therefore registered as ``"module:Class"`` strings and imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

_Class = TypeVar("_Class", bound=type)

#: Encoder name -> its class, or ``"module:Class"`` until first use.
_ENCODERS: dict[str, Any] = {}


def register_encoder(name: str, target: type | str | None = None) -> Any:
    """Make an encoder class available by name, as a class decorator or with ``target`` given directly.

    ``target`` may be a ``"module:Class"`` string, imported when the encoder is first built. A name is
    registered once; registering the same class again is allowed (a module imported twice), another one is
    refused, because a weights file's encoder name must keep meaning the same network.
    """
    if target is None:
        return _decorator(name)
    current = _ENCODERS.get(name)
    if current is not None and current != target:
        raise ValueError(f"encoder {name!r} is already registered ({_describe(current)})")
    _ENCODERS[name] = target
    return target


def _decorator(name: str) -> Callable[[_Class], _Class]:
    def register(cls: _Class) -> _Class:
        register_encoder(name, cls)
        return cls

    return register


def encoder_names() -> tuple[str, ...]:
    """Names of all registered encoders, in registration order."""
    return tuple(_ENCODERS)


def check_encoder_name(name: str) -> None:
    """Raise ``ValueError`` naming the choices unless ``name`` is a registered encoder."""
    if name not in _ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; choose one of {', '.join(_ENCODERS)}")


def encoder_class(name: str) -> type:
    """The class registered as ``name`` (importing a built-in one's module on first use)."""
    check_encoder_name(name)
    target = _ENCODERS[name]
    if isinstance(target, str):
        module, _, attribute = target.partition(":")
        target = getattr(importlib.import_module(module), attribute)
        _ENCODERS[name] = target
    return target


def _describe(target: Any) -> str:
    return target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"


register_encoder("densenet201", "mattecli.models.encoders:DenseNet201Encoder")
register_encoder("efficientnet_lite0", "mattecli.models.encoders:EfficientNetLite0Encoder")
register_encoder("efficientnet_lite1", "mattecli.models.encoders:EfficientNetLite1Encoder")
register_encoder("efficientnet_lite2", "mattecli.models.encoders:EfficientNetLite2Encoder")
