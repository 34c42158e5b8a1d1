"""The variant registry: one module per variant, each registering one ``VariantSpec`` (see ``spec``).

Adding a variant = a new module here that calls ``register(VariantSpec(...))`` + its name in ``_BUILT_IN`` (or, from
outside the package, importing a module that calls ``register``).
"""

from __future__ import annotations

from importlib import import_module

from kolite_export.variants.context import BuildContext
from kolite_export.variants.spec import VARIANTS, VariantSpec, default_variants, register, unregister

__all__ = ["VARIANTS", "BuildContext", "VariantSpec", "default_variants", "get_variant", "register", "unregister"]

# Registration order is the order of `kolite export --help`, of an artifact's variants and of the bench contenders.
_BUILT_IN = ("fp32", "fp32_opt", "int8", "int8_static", "fp16")
for _module in _BUILT_IN:
    import_module(f"{__name__}.{_module}")


def get_variant(name: str) -> VariantSpec:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}") from None
