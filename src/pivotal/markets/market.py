"""Procurement markets: named producers and buyers with validated curves, and their file format.

JSON input::

    {"producers": [{"name": "p1", "cost": {"kind": "quadratic", "a": 2, "b": 0.5},
                    "capacity": 10}],
     "buyers":    [{"name": "gov", "benefit": {"kind": "linear", "a": 9}, "capacity": 8}]}

Curve objects: ``{"kind": "linear", "a": ...}``, ``{"kind": "quadratic", "a": ..., "b": ...}``,
``{"kind": "piecewise_linear", "points": [[0, 0], [q1, v1], ...]}`` (``capacity`` optional for
piecewise-linear curves: it defaults to the last point's quantity).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, ValidationError

from pivotal.errors import InputError, InvalidCurveError
from pivotal.fileio import read_json
from pivotal.markets.curves import Curve, CurveKind, Role, linear, piecewise_linear, quadratic
from pivotal.markets.table import CurveTable, table_from_document
from pivotal.results import sha256_of


@dataclass(frozen=True)
class Agent:
    """A named producer or buyer with its reported curve."""

    name: str
    curve: Curve

    @property
    def role(self) -> Role:
        """Producer or buyer."""
        return self.curve.role


class Market:
    """A validated procurement market: unique names, at least one producer and one buyer.

    Built from agents (``Market(agents)``) or, for large files, from columns
    (:meth:`from_table`, :class:`pivotal.markets.table.CurveTable`); each form is derived from
    the other when first asked for, so a market read from a file of 10^6 agents is solved and
    written without a Python object per agent.
    """

    _hash_source: Callable[[], str] | None = None

    def __init__(self, agents: Iterable[Agent]) -> None:
        self._agents: tuple[Agent, ...] | None = tuple(agents)
        self._table: CurveTable | None = None
        _check_agents(self._agents)

    @classmethod
    def from_table(cls, table: CurveTable) -> Market:
        """A market from validated columns (names and sides are checked here)."""
        self = cls.__new__(cls)
        self._agents = None
        self._table = table
        names = table.names
        if not all(names) or len(set(names)) != len(names) or not (table.sign > 0).any():
            _check_agents(self.agents)  # names the problem
        if not (table.sign < 0).any():
            _check_agents(self.agents)
        return self

    @property
    def agents(self) -> tuple[Agent, ...]:
        """Producers and buyers (producers first when read from a file)."""
        if self._agents is None:
            assert self._table is not None
            t = self._table
            self._agents = tuple(Agent(name, t.curve(i)) for i, name in enumerate(t.names))
        return self._agents

    @property
    def table(self) -> CurveTable:
        """The curves as columns (closed-form curves only: ``ValueError`` otherwise)."""
        if self._table is None:
            agents = self.agents
            self._table = CurveTable.from_curves(
                [a.name for a in agents], [a.curve for a in agents]
            )
        return self._table

    @property
    def names(self) -> list[str]:
        """Agent names in order."""
        if self._table is not None:
            return self._table.names
        return [a.name for a in self.agents]

    def __len__(self) -> int:
        return len(self.names)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Market) and self.agents == other.agents

    def __hash__(self) -> int:
        return hash(self.agents)

    def __repr__(self) -> str:
        return f"Market({len(self)} agents)"

    @cached_property
    def producers(self) -> tuple[Agent, ...]:
        """Producers in input order."""
        return tuple(a for a in self.agents if a.role is Role.PRODUCER)

    @cached_property
    def buyers(self) -> tuple[Agent, ...]:
        """Buyers in input order."""
        return tuple(a for a in self.agents if a.role is Role.BUYER)

    @cached_property
    def index(self) -> dict[str, int]:
        """Position of each agent by name."""
        return {name: i for i, name in enumerate(self.names)}

    @cached_property
    def closed_form(self) -> bool:
        """Whether every curve has closed-form responses (the O(n log n) path applies)."""
        return self._table is not None or all(a.curve.closed_form for a in self.agents)

    def position(self, name: str) -> int:
        """An agent's position by name: from :attr:`index` once built, else by a scan of the
        names (one name among 10^6: 10 ms, where building the index takes 0.7 s)."""
        if "index" in self.__dict__:
            return self.index[name]
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(name) from None

    def agent(self, name: str) -> Agent:
        """One agent by name (built from the columns when needed)."""
        i = self.position(name)
        if self._agents is None:
            assert self._table is not None
            return Agent(name, self._table.curve(i))
        return self._agents[i]

    def replace(self, name: str, curve: Curve) -> Market:
        """The same market with ``name``'s curve replaced (a misreport)."""
        return Market(tuple(Agent(a.name, curve) if a.name == name else a for a in self.agents))

    def without(self, name: str) -> tuple[Agent, ...]:
        """The other agents (a counterfactual market may lack a side, so not a Market)."""
        return tuple(a for a in self.agents if a.name != name)

    @cached_property
    def _document(self) -> dict[str, Any]:
        if self.closed_form:
            producers, buyers = self.table.entries()
            return {"producers": producers, "buyers": buyers}

        def entry(agent: Agent, key: str) -> dict[str, Any]:
            return {
                "name": agent.name,
                key: agent.curve.to_dict(),
                "capacity": agent.curve.capacity,
            }

        return {
            "producers": [entry(a, "cost") for a in self.producers],
            "buyers": [entry(a, "benefit") for a in self.buyers],
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON input format (built once; the entries are shared: do not modify them)."""
        doc = self._document
        return {"producers": list(doc["producers"]), "buyers": list(doc["buyers"])}

    def hash_from(self, source: Callable[[], str]) -> None:
        """Take :attr:`sha256` from ``source`` when it is first asked for (the same hash,
        computed elsewhere: :class:`pivotal.markets.encode.InputTexts`)."""
        self._hash_source = source

    @cached_property
    def sha256(self) -> str:
        """Hash of the canonical JSON form. A ``marginal`` curve has no JSON form: it is hashed
        by its role, capacity and the qualified name of its function."""
        if self._hash_source is not None:
            return self._hash_source()
        if self.closed_form:
            text = self.table.canonical_json()  # = canonical_json(self.to_dict()), faster
            return hashlib.sha256(text.encode("utf-8")).hexdigest()

        def entry(agent: Agent) -> dict[str, Any]:
            c = agent.curve
            fn = c.marginal_fn
            form: Any = (
                f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"
                if c.kind is CurveKind.MARGINAL
                else c.to_dict()
            )
            return {"name": agent.name, "role": c.role.value, "capacity": c.capacity, "curve": form}

        return sha256_of({"agents": [entry(a) for a in self.agents]})


def _check_agents(agents: tuple[Agent, ...]) -> None:
    """Non-empty unique names, at least one producer and one buyer."""
    seen: set[str] = set()
    for agent in agents:
        if not agent.name:
            raise InputError("every agent needs a non-empty name", field="name")
        if agent.name in seen:
            raise InputError(
                f"agent name '{agent.name}' is used twice; names must be unique across "
                "producers and buyers",
                field="name",
            )
        seen.add(agent.name)
    if not any(a.role is Role.PRODUCER for a in agents):
        raise InputError("the market has no producers; add at least one", field="producers")
    if not any(a.role is Role.BUYER for a in agents):
        raise InputError("the market has no buyers; add at least one", field="buyers")


class LinearIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["linear"]
    a: StrictFloat


class QuadraticIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["quadratic"]
    a: StrictFloat
    b: StrictFloat


class PiecewiseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["piecewise_linear"]
    points: list[tuple[StrictFloat, StrictFloat]] = Field(min_length=2)


CurveIn = Annotated[LinearIn | QuadraticIn | PiecewiseIn, Field(discriminator="kind")]


class ProducerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1)
    cost: CurveIn
    capacity: StrictFloat | None = None


class BuyerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1)
    benefit: CurveIn
    capacity: StrictFloat | None = None


class MarketFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    producers: list[ProducerIn]
    buyers: list[BuyerIn]


def _curve(
    spec: LinearIn | QuadraticIn | PiecewiseIn, role: Role, cap: float | None, where: str
) -> Curve:
    if isinstance(spec, PiecewiseIn):
        return piecewise_linear(role, [list(p) for p in spec.points], cap, where=where)
    if cap is None:
        raise InvalidCurveError(
            f"{where}: capacity is missing; {spec.kind} curves need a capacity",
            field=f"{where}.capacity",
        )
    if isinstance(spec, LinearIn):
        return linear(role, spec.a, cap, where=where)
    return quadratic(role, spec.a, spec.b, cap, where=where)


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    parts = [
        p
        for p in first["loc"]
        if p not in {"linear", "quadratic", "piecewise_linear", "float", "int"}
    ]
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
    kind = first["type"]
    if kind == "union_tag_invalid":
        msg = (
            f"unknown curve kind '{first.get('ctx', {}).get('tag')}'; use linear, quadratic or "
            "piecewise_linear"
        )
    elif kind == "union_tag_not_found":
        msg = "the curve needs a 'kind' (linear, quadratic or piecewise_linear)"
    elif kind in {"float_type", "float_parsing", "finite_number"}:
        msg = f"expected a finite number, got {first.get('input')!r}"
    elif kind == "missing":
        msg = "required field is missing"
    elif kind == "extra_forbidden":
        msg = "unknown field"
    else:
        msg = first["msg"]
    return f"{loc or '(document)'}: {msg}"


def market_from_document(doc: Any, *, source: str = "input") -> Market:
    """Validate a parsed JSON document into a :class:`Market`.

    A well-formed document goes straight into columns
    (:func:`pivotal.markets.table.table_from_document`); anything else, including every
    invalid document, is read agent by agent, which names the problem.
    """
    table = table_from_document(doc)
    if table is not None:
        return Market.from_table(table)
    return market_per_agent(doc, source=source)


def market_per_agent(doc: Any, *, source: str = "input") -> Market:
    """:func:`market_from_document` agent by agent (pydantic models, then one validated
    :class:`~pivotal.markets.curves.Curve` each): the path that names every problem."""
    if not isinstance(doc, dict):
        raise InputError(f"{source}: expected a JSON object with 'producers' and 'buyers'")
    try:
        mf = MarketFile.model_validate(doc)
    except ValidationError as err:
        raise InputError(f"{source}: {_describe(err)}") from None
    agents = [
        Agent(p.name, _curve(p.cost, Role.PRODUCER, p.capacity, f"producers[{i}] ('{p.name}')"))
        for i, p in enumerate(mf.producers)
    ] + [
        Agent(b.name, _curve(b.benefit, Role.BUYER, b.capacity, f"buyers[{i}] ('{b.name}')"))
        for i, b in enumerate(mf.buyers)
    ]
    return Market(tuple(agents))


def load_market(path: str | Path) -> Market:
    """Read a market from a JSON file (see the module docstring)."""
    p = Path(path)
    return market_from_document(read_json(p), source=str(p))


__all__ = [
    "Agent",
    "CurveKind",
    "Market",
    "load_market",
    "market_from_document",
    "market_per_agent",
]
