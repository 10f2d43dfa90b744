"""The parsers of the seven conversion types, by type (seed 000). Each runs in the parse sandbox:
`parse(source, plan, candidate) -> info` writes into the plan and returns what the worker needs
(`kind`: "objects", "archive" or "odml", plus details for `extracted_info`)."""
from __future__ import annotations

from typing import Any, Callable

from services.files.conversion import detect
from services.files.conversion.converters.archive import parse_archive
from services.files.conversion.converters.ascii_csv import parse_csv
from services.files.conversion.converters.hdf5 import parse_hdf5
from services.files.conversion.converters.neo_io import parse_neo
from services.files.conversion.converters.odml import parse_odml

PARSERS: dict[int, Callable[..., dict[str, Any]]] = {
    detect.NEUROSHARE: parse_neo,
    detect.NEO_IO: parse_neo,
    detect.ASCII_CSV: parse_csv,
    detect.ODML: parse_odml,
    detect.HDF5: parse_hdf5,
    detect.ZIP: parse_archive,
    detect.TAR: parse_archive,
}
