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

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, ValidationError

from pivotal.errors import InputError, InvalidCurveError
from pivotal.fileio import read_json
from pivotal.markets.curves import Curve, CurveKind, Role, linear, piecewise_linear, quadratic
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


@dataclass(frozen=True)
class Market:
    """A validated procurement market: unique names, at least one producer and one buyer."""

    agents: tuple[Agent, ...]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for agent in self.agents:
            if not agent.name:
                raise InputError("every agent needs a non-empty name", field="name")
            if agent.name in seen:
                raise InputError(
                    f"agent name '{agent.name}' is used twice; names must be unique across "
                    "producers and buyers",
                    field="name",
                )
            seen.add(agent.name)
        if not any(a.role is Role.PRODUCER for a in self.agents):
            raise InputError("the market has no producers; add at least one", field="producers")
        if not any(a.role is Role.BUYER for a in self.agents):
            raise InputError("the market has no buyers; add at least one", field="buyers")

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
        return {a.name: i for i, a in enumerate(self.agents)}

    @property
    def closed_form(self) -> bool:
        """Whether every curve has closed-form responses (the O(n log n) path applies)."""
        return all(a.curve.closed_form for a in self.agents)

    def replace(self, name: str, curve: Curve) -> Market:
        """The same market with ``name``'s curve replaced (a misreport)."""
        return Market(tuple(Agent(a.name, curve) if a.name == name else a for a in self.agents))

    def without(self, name: str) -> tuple[Agent, ...]:
        """The other agents (a counterfactual market may lack a side, so not a Market)."""
        return tuple(a for a in self.agents if a.name != name)

    def to_dict(self) -> dict[str, Any]:
        """The JSON input format."""

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

    @cached_property
    def sha256(self) -> str:
        """Hash of the canonical JSON form. A ``marginal`` curve has no JSON form: it is hashed
        by its role, capacity and the qualified name of its function."""
        if self.closed_form:
            return sha256_of(self.to_dict())

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
    """Validate a parsed JSON document into a :class:`Market`."""
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


__all__ = ["Agent", "CurveKind", "Market", "load_market", "market_from_document"]
