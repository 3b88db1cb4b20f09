"""Per-agent amounts of a market outcome kept as columns: read-only ``name -> value`` mappings
over a NumPy array, so that a market of 10^6 agents is solved and written without a Python
dictionary per amount. The dictionary is built the first time a value is looked up by name;
:mod:`pivotal.markets.encode` writes the JSON straight from the column."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from pivotal.arrays import FloatArray

V = TypeVar("V")


class _Column(Mapping[str, V], Generic[V]):
    """A read-only mapping of ``names`` (unique, in order) to one value each."""

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def _values(self) -> list[V]:
        raise NotImplementedError

    @cached_property
    def _dict(self) -> dict[str, V]:
        return dict(zip(self.names, self._values(), strict=True))

    def to_dict(self) -> dict[str, V]:
        """A plain dictionary (a new one at each call)."""
        return dict(self._dict)

    def __getitem__(self, name: str) -> V:
        return self._dict[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self._dict

    def keys(self) -> Any:
        return self._dict.keys()

    def values(self) -> Any:
        return self._dict.values()

    def items(self) -> Any:
        return self._dict.items()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Column):
            return self._dict == other._dict
        return self._dict == other

    __hash__ = None  # type: ignore[assignment]  # like a dict

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} agents)"

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (self._dict,))


class AmountColumn(_Column[float]):
    """``name -> amount`` over a float column (``amounts[i]`` belongs to ``names[i]``)."""

    def __init__(self, names: list[str], amounts: FloatArray) -> None:
        super().__init__(names)
        if amounts.shape != (len(names),):
            raise ValueError(f"{len(names)} names but {amounts.shape} amounts")
        self.amounts: FloatArray = np.array(amounts, dtype=np.float64)
        self.amounts.flags.writeable = False

    def _values(self) -> list[float]:
        values: list[float] = self.amounts.tolist()
        return values


class LabelColumn(_Column[V]):
    """``name -> labels[codes[i]]`` (a few distinct values, such as the agents' roles)."""

    def __init__(self, names: list[str], codes: npt.NDArray[np.int64], labels: tuple[V, ...]):
        super().__init__(names)
        if codes.shape != (len(names),):
            raise ValueError(f"{len(names)} names but {codes.shape} codes")
        self.codes = np.array(codes, dtype=np.int64)
        self.codes.flags.writeable = False
        self.labels = labels

    def _values(self) -> list[V]:
        return list(map(self.labels.__getitem__, self.codes.tolist()))

    def relabel(self, labels: tuple[Any, ...]) -> LabelColumn[Any]:
        """The same codes with other labels (for example the roles' JSON strings)."""
        return LabelColumn(self.names, self.codes, labels)


def as_dict(mapping: Mapping[str, V]) -> dict[str, V]:
    """A plain dictionary of ``mapping`` (a column's without a lookup per name)."""
    if isinstance(mapping, _Column):
        return mapping.to_dict()
    return dict(mapping)


__all__ = ["AmountColumn", "LabelColumn", "as_dict"]
