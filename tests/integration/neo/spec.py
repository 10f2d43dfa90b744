"""Seed 001's tables 2.1-2.4 and unit lists, written out independently of services/neo/schema.py
so that the tests check the seed rather than echo the implementation."""
from __future__ import annotations

import re

# Table 2.1: attributes; the required ones (marked * in the seed).
ATTRIBUTES = {
    "block": ("name", "filedatetime", "index"),
    "segment": ("name", "filedatetime", "index"),
    "event": ("label",),
    "eventarray": (),
    "epoch": ("label",),
    "epocharray": (),
    "unit": ("name",),
    "spiketrain": (),
    "analogsignal": ("name",),
    "analogsignalarray": (),
    "irsaanalogsignal": ("name",),
    "spike": (),
    "recordingchannelgroup": ("name",),
    "recordingchannel": ("name", "index"),
}
REQUIRED_ATTRIBUTES = {
    t: (("label",) if "label" in attrs else ("name",) if "name" in attrs else ()) for t, attrs in ATTRIBUTES.items()
}

# Table 2.2: data fields (attributes with units) and their unit domains.
DATA_FIELDS = {
    "event": {"time": "time"},
    "epoch": {"time": "time", "duration": "time"},
    "spiketrain": {"t_start": "time", "t_stop": "time", "times": "time", "waveforms": "signal"},
    "analogsignal": {"sampling_rate": "rate", "t_start": "time", "signal": "signal"},
    "irsaanalogsignal": {"t_start": "time", "signal": "signal", "times": "time"},
    "spike": {"left_sweep": "time", "time": "time", "sampling_rate": "rate", "waveforms": "signal"},
}
ARRAY_FIELDS = {"times", "signal", "waveforms"}
# The data a data-bearing object cannot be created without ("a data-bearing object without its array is 400").
REQUIRED_ARRAYS = {"spiketrain": ("times",), "analogsignal": ("signal",), "irsaanalogsignal": ("signal", "times")}
# Scalars the service requires as well (an analog signal without a sampling rate means nothing).
REQUIRED_SCALARS = {
    "event": ("time",),
    "epoch": ("time", "duration"),
    "spiketrain": ("t_start", "t_stop"),
    "analogsignal": ("sampling_rate", "t_start"),
    "irsaanalogsignal": ("t_start",),
    "spike": ("time",),
}

UNITS = {"time": ("s", "ms", "mcs"), "signal": ("v", "mv", "mcv"), "rate": ("hz", "khz", "mhz", "1/s")}
FOREIGN_UNIT = {"time": "mv", "signal": "ms", "rate": "s"}
MIXED_CASE = {"time": "mS", "signal": "mV", "rate": "kHz"}

# Table 2.4 (parents), plus recordingchannelgroup -> analogsignalarray from table 2.3.
PARENTS = {
    "block": (),
    "segment": ("block",),
    "event": ("segment", "eventarray"),
    "eventarray": ("segment",),
    "epoch": ("segment", "epocharray"),
    "epocharray": ("segment",),
    "unit": ("recordingchannel",),
    "spiketrain": ("segment", "unit"),
    "analogsignal": ("segment", "analogsignalarray", "recordingchannel"),
    "analogsignalarray": ("segment", "recordingchannelgroup"),
    "irsaanalogsignal": ("segment", "recordingchannel"),
    "spike": ("segment", "unit"),
    "recordingchannelgroup": ("block",),
    "recordingchannel": ("recordingchannelgroup",),
}
# Table 2.3 (children).
CHILDREN = {
    "block": ("segment", "recordingchannelgroup"),
    "segment": ("analogsignal", "irsaanalogsignal", "analogsignalarray", "spiketrain", "spike", "event",
                "eventarray", "epoch", "epocharray"),
    "eventarray": ("event",),
    "epocharray": ("epoch",),
    "unit": ("spiketrain", "spike"),
    "analogsignalarray": ("analogsignal",),
    "recordingchannelgroup": ("recordingchannel", "analogsignalarray"),
    "recordingchannel": ("unit", "analogsignal", "irsaanalogsignal"),
}
LINKS = sorted((child, parent) for child, parents in PARENTS.items() for parent in parents)

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def neo_number(neo_id: str) -> int:
    return int(neo_id.rsplit("_", 1)[1])
