"""Registers the project's architectures (the log-mel CNN, BC-ResNet, the speech-embedding classifier)
with transformers' Auto classes.

Called by the import hook in ``streamclf/__init__.py`` as soon as ``transformers`` is imported.
Without torch installed, only the config and feature extractor are registered.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType

log = logging.getLogger(__name__)

# (configuration module, its config class, feature extractor module, model module) per architecture
_ARCHITECTURES = (
    (
        "streamclf.models.configuration", "LogMelCnnConfig",
        "streamclf.models.feature_extraction", "streamclf.models.modeling",
    ),
    (
        "streamclf.models.bcresnet_configuration", "BcResNetConfig",
        "streamclf.models.feature_extraction", "streamclf.models.bcresnet_modeling",
    ),
    (
        "streamclf.models.speech_embedding_configuration", "SpeechEmbeddingConfig",
        "streamclf.models.waveform_extraction", "streamclf.models.speech_embedding_modeling",
    ),
)  # fmt: skip


def _initialising(module_name: str) -> bool:
    """True while ``module_name`` is half-way through its own import (it registers itself at its end)."""
    module = sys.modules.get(module_name)
    return module is not None and bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


def register(finished: str | None = None) -> None:
    """Register each architecture's config, feature extractor and (when torch is importable) model.
    Idempotent.

    Each module registers its own class when it is imported, then calls this (naming itself as
    ``finished``); this imports those not yet imported. While any project module is half-way through
    its own import, it does nothing: that module calls it again at its end. So the order in which
    transformers and these modules are first imported does not matter.
    """
    with_torch = importlib.util.find_spec("torch") is not None
    if not with_torch:
        log.debug("torch not installed: the model classes are not registered")
    modules = [
        name
        for config_name, _, extractor_name, model_name in _ARCHITECTURES
        for name in (config_name, extractor_name, *([model_name] if with_torch else []))
    ]
    if any(_initialising(name) for name in modules if name != finished):
        return
    for name in modules:
        if name != finished:
            importlib.import_module(name)


class _RegisterAfterTransformers:
    """``sys.meta_path`` finder: lets the normal finders locate ``transformers`` and wraps the
    loader's ``exec_module`` so :func:`register` runs right after the package finishes importing."""

    def find_spec(self, fullname: str, path: object, target: object = None) -> ModuleSpec | None:
        if fullname != "transformers":
            return None
        spec = _spec_from_other_finders(self, fullname, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        original_exec = loader.exec_module

        def exec_then_register(module: ModuleType) -> None:
            original_exec(module)
            _uninstall(self)
            register()

        loader.exec_module = exec_then_register  # type: ignore[method-assign]
        return spec


def _spec_from_other_finders(
    hook: _RegisterAfterTransformers, fullname: str, path: object, target: object
) -> ModuleSpec | None:
    for finder in list(sys.meta_path):
        if finder is hook:
            continue
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        spec = find_spec(fullname, path, target)
        if spec is not None:
            return spec
    return None


def _uninstall(hook: _RegisterAfterTransformers) -> None:
    if hook in sys.meta_path:
        sys.meta_path.remove(hook)


def install_import_hook() -> None:
    """Register now if ``transformers`` is already imported, else as soon as it is. Imports neither
    torch nor transformers itself."""
    if "transformers" in sys.modules:
        register()
        return
    if not any(isinstance(finder, _RegisterAfterTransformers) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterTransformers())
