"""The 14 NEO object types of seed 001 (tables 2.1-2.4), described once as data.

Everything else in the service (validation, storage, serialisation, queries) reads these tables;
no type has code of its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from services.neo.units import RATE, SIGNAL, TIME, UnitDomain

AttributeKind = Literal["str", "int", "datetime"]
DataKind = Literal["scalar", "array", "waveforms"]


@dataclass(frozen=True)
class Attribute:
    name: str
    kind: AttributeKind
    required: bool = False


@dataclass(frozen=True)
class DataField:
    name: str
    domain: UnitDomain
    kind: DataKind
    required: bool = True

    @property
    def is_array(self) -> bool:
        return self.kind != "scalar"


@dataclass(frozen=True)
class NeoType:
    name: str
    attributes: tuple[Attribute, ...] = ()
    data_fields: tuple[DataField, ...] = ()
    parents: tuple[str, ...] = ()
    children: tuple[str, ...] = field(default=())
    # the data field windows and `format=npy` address when none is named
    primary_array: str | None = None

    def attribute(self, name: str) -> Attribute | None:
        return next((a for a in self.attributes if a.name == name), None)

    def data_field(self, name: str) -> DataField | None:
        return next((d for d in self.data_fields if d.name == name), None)

    @property
    def array_fields(self) -> tuple[DataField, ...]:
        return tuple(d for d in self.data_fields if d.is_array)

    @property
    def collection(self) -> str:
        return f"neo_{self.name}"


def _name(required: bool = True) -> Attribute:
    return Attribute("name", "str", required)


def _scalar(name: str, domain: UnitDomain, required: bool = True) -> DataField:
    return DataField(name, domain, "scalar", required)


# Table 2.4 (parents). Table 2.3 also lists analogsignalarray under recordingchannelgroup, so that
# link is a parent here too; children are derived from these lists so the two tables cannot disagree.
_TYPES = (
    NeoType("block", (_name(), Attribute("filedatetime", "datetime"), Attribute("index", "int"))),
    NeoType("segment", (_name(), Attribute("filedatetime", "datetime"), Attribute("index", "int")), parents=("block",)),
    NeoType("event", (Attribute("label", "str", True),), (_scalar("time", TIME),), ("segment", "eventarray")),
    NeoType("eventarray", parents=("segment",)),
    NeoType(
        "epoch",
        (Attribute("label", "str", True),),
        (_scalar("time", TIME), _scalar("duration", TIME)),
        ("segment", "epocharray"),
    ),
    NeoType("epocharray", parents=("segment",)),
    NeoType("unit", (_name(),), parents=("recordingchannel",)),
    NeoType(
        "spiketrain",
        data_fields=(
            _scalar("t_start", TIME),
            _scalar("t_stop", TIME),
            DataField("times", TIME, "array"),
            DataField("waveforms", SIGNAL, "waveforms", required=False),
        ),
        parents=("segment", "unit"),
        primary_array="times",
    ),
    NeoType(
        "analogsignal",
        (_name(),),
        (_scalar("sampling_rate", RATE), _scalar("t_start", TIME), DataField("signal", SIGNAL, "array")),
        ("segment", "analogsignalarray", "recordingchannel"),
        primary_array="signal",
    ),
    NeoType("analogsignalarray", parents=("segment", "recordingchannelgroup")),
    NeoType(
        "irsaanalogsignal",
        (_name(),),
        (_scalar("t_start", TIME), DataField("signal", SIGNAL, "array"), DataField("times", TIME, "array")),
        ("segment", "recordingchannel"),
        primary_array="signal",
    ),
    NeoType(
        "spike",
        data_fields=(
            _scalar("left_sweep", TIME, required=False),
            _scalar("time", TIME),
            _scalar("sampling_rate", RATE, required=False),
            DataField("waveforms", SIGNAL, "waveforms", required=False),
        ),
        parents=("segment", "unit"),
        primary_array="waveforms",
    ),
    NeoType("recordingchannelgroup", (_name(),), parents=("block",)),
    NeoType("recordingchannel", (_name(), Attribute("index", "int")), parents=("recordingchannelgroup",)),
)


def _with_children(types: tuple[NeoType, ...]) -> dict[str, NeoType]:
    children = {t.name: tuple(c.name for c in types if t.name in c.parents) for t in types}
    return {t.name: NeoType(t.name, t.attributes, t.data_fields, t.parents, children[t.name], t.primary_array) for t in types}


NEO_TYPES: dict[str, NeoType] = _with_children(_TYPES)

# Fields every object carries besides its table entries.
COMMON_FIELDS = ("description", "file_origin", "annotations")


def neo_type(name: str) -> NeoType | None:
    return NEO_TYPES.get(name.lower())
