"""Conversion type 3 (ascii-csv): every line is one signal (comma-separated floats)."""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from services.files.conversion import neo_objects
from services.files.conversion.errors import ConversionError


def _rows(source) -> Iterator[np.ndarray]:
    with open(source.path, "r", encoding="utf-8", errors="strict") as f:
        try:
            for number, line in enumerate(f, start=1):
                text = line.strip().rstrip(",")
                if not text or text.startswith("#"):
                    continue
                try:
                    yield np.array([float(cell) for cell in text.split(",")], dtype=np.float64)
                except ValueError:
                    raise ConversionError(f"line {number} is not comma-separated numbers") from None
        except UnicodeDecodeError:
            raise ConversionError("the file is not text") from None


def parse_csv(source, plan, candidate) -> dict[str, Any]:
    """One AnalogSignal per line, in a block with one segment (one line in memory at a time)."""
    if source.path.stat().st_size > source.limits.csv_max_bytes:
        raise ConversionError(f"CSV files are converted up to {source.limits.csv_max_bytes} bytes")
    rate = source.options.get("sampling_rate", 1000.0)
    segment_id = None
    count = 0
    for index, row in enumerate(_rows(source)):
        if segment_id is None:
            _, segment_id = neo_objects.container(plan, source.title, source="ascii-csv")
        plan.create("analogsignal", {
            "name": f"signal {index}", "segment": segment_id,
            "sampling_rate": {"units": "hz", "data": rate}, "t_start": {"units": "s", "data": 0.0},
            "signal": {"units": "mv"}, "annotations": {"line": index + 1},
        }, {"signal": row})
        count += 1
    if not count:
        raise ConversionError("no signal in the file")
    return {"kind": "objects"}
