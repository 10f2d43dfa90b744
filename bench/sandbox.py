"""What the parse sandbox costs: a conversion's parse run confined vs. in this process.

    python -m bench sandbox   (or python -m bench.sandbox [--runs 7])

For three uploads (a small CSV, a NIX file written by neo with 8 channels x 100,000 samples, and
an HDF5 file with a 10-million-sample dataset) it runs the real parse (services/files/conversion/
parse.py: detection, HDF5 rules, the converter, the plan with its .npy arrays) once in the sandbox
(shared/sandbox: a child process, Landlock, limits) and once in this process, and prints the
medians and the difference. Also the bare cost of starting a confined child that does nothing.
No target: the figure says what confinement adds to every conversion.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from services.files.conversion.parse import ENTRY, main as parse_in_process
from services.files.conversion.source import ParseLimits
from shared.sandbox import SandboxSettings, run_sandboxed

BENCH = Path(__file__).resolve().parent


def noop(*, input_path, scratch, params):
    return {}


def _csv(folder: Path) -> Path:
    path = folder / "small.csv"
    path.write_text("\n".join(",".join(str(float(i + j)) for j in range(100)) for i in range(20)) + "\n")
    return path


def _nix(folder: Path) -> Path:
    import neo
    import quantities as pq
    from neo.io import NixIO

    path = folder / "signals.nix"
    block = neo.Block(name="bench")
    segment = neo.Segment()
    block.segments.append(segment)
    segment.analogsignals.append(neo.AnalogSignal(np.random.default_rng(0).normal(size=(100_000, 8)), units="uV",
                                                  sampling_rate=20 * pq.kHz))
    with NixIO(str(path), mode="ow") as io:
        io.write_block(block)
    return path


def _hdf5(folder: Path) -> Path:
    import h5py

    path = folder / "big.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("signal", data=np.random.default_rng(1).normal(size=10_000_000).astype("f4"))
    return path


def _median_seconds(run, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args, _ignored = parser.parse_known_args(argv)
    settings = SandboxSettings()
    results: dict = {"bench": "sandbox", "runs": args.runs}
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp:
        folder = Path(tmp)
        scratch = folder / "scratch"

        def fresh() -> Path:
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir()
            return scratch

        start = _median_seconds(lambda: run_sandboxed("bench.sandbox:noop", input_path=None, scratch=fresh(), params={},
                                                      settings=settings, code_paths=[BENCH]), args.runs)
        results["start_ms"] = round(start * 1000, 1)
        print(f"sandbox bench: a confined child that does nothing: median {start * 1000:.0f} ms", flush=True)
        for label, make in (("csv 20 x 100", _csv), ("nix 8 ch x 100k", _nix), ("hdf5 10M samples", _hdf5)):
            upload = make(folder)
            params = {"title": upload.name, "limits": ParseLimits().to_params()}
            confined = _median_seconds(lambda: run_sandboxed(ENTRY, input_path=upload, scratch=fresh(), params=params,
                                                             settings=settings), args.runs)
            inline = _median_seconds(lambda: parse_in_process(input_path=upload, scratch=fresh(), params=params),
                                     args.runs)
            results[label] = {"sandbox_ms": round(confined * 1000, 1), "in_process_ms": round(inline * 1000, 1)}
            print(f"  parse {label:18s} sandbox {confined * 1000:7.0f} ms   in process {inline * 1000:7.0f} ms   "
                  f"added {1000 * (confined - inline):+6.0f} ms", flush=True)
    print(json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
