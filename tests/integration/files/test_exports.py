"""Exports of converted data in hdf5, nix, nwb and csv, read back with the libraries that read them."""
from __future__ import annotations

import io

import h5py
import neo
import numpy as np
import pytest

from tests.integration.files.conftest import number
from tests.integration.files.test_convert_neo import make_block

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture(scope="module")
def converted(client, neighbours, tmp_path_factory, files_app):
    """One NIX file converted once for the whole module."""
    from tests.integration.files.conftest import Api

    api = Api(client, 9_999_001, "exporter", neighbours)
    path = tmp_path_factory.mktemp("export") / "session.nix"
    with neo.io.NixIO(str(path), mode="ow") as nix:
        nix.write_block(make_block())
    fields = api.wait_state(api.upload("session.nix", path.read_bytes())["id"])
    assert fields["current_state"] == "converted", fields
    return api, fields


def _download(api, fields, fmt, files_dir=None):
    response = api.get(f"/datafiles/{number(fields['id'])}/download/", format=fmt)
    assert response.status_code == 200, response.get_json()
    return response


def test_export_hdf5(converted, files_dir):
    api, fields = converted
    response = _download(api, fields, "hdf5")
    assert response.headers["Content-Disposition"] == "attachment; filename=session.h5"
    with h5py.File(io.BytesIO(response.data), "r") as f:
        segment = f["block_0/segment_0"]
        lfp = segment["analogsignal_0"]
        assert lfp.shape == (100, 2) and lfp.attrs["sampling_rate"] == 1000.0
        assert np.allclose(lfp[()], np.arange(200).reshape(100, 2) / 1000.0)
        assert np.allclose(segment["spiketrain_0"][()], [0.01, 0.02, 0.035])
        assert list(segment["event_0"].attrs["labels"]) == ["go", "stop"]
    assert not list((files_dir / "tmp").glob("export-*"))


def test_export_nix_round_trips_through_neo(converted, tmp_path):
    api, fields = converted
    path = tmp_path / "out.nix"
    path.write_bytes(_download(api, fields, "nix").data)
    with neo.io.NixIO(str(path), mode="ro") as nix:
        (block,) = nix.read_all_blocks()
    assert block.name == "session 1" and block.annotations["subject"] == "monkey"
    segment = block.segments[0]
    (signal,) = segment.analogsignals
    assert signal.shape == (100, 2) and float(signal.sampling_rate.rescale("Hz")) == 1000.0
    assert np.allclose(signal.rescale("uV").magnitude, np.arange(200).reshape(100, 2))
    (train,) = segment.spiketrains
    assert np.allclose(train.rescale("ms").magnitude, [10, 20, 35]) and train.waveforms.shape == (3, 1, 4)
    (event,) = segment.events
    assert list(event.labels) == ["go", "stop"]
    (epoch,) = segment.epochs
    assert float(epoch.durations[0].rescale("s")) == 0.25
    assert len(segment.irregularlysampledsignals) == 1


def test_export_nwb_round_trips_through_neo(converted, tmp_path):
    api, fields = converted
    path = tmp_path / "out.nwb"
    path.write_bytes(_download(api, fields, "nwb").data)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (block,) = neo.io.NWBIO(str(path), mode="r").read_all_blocks()
    segment = block.segments[0]
    assert any(s.shape[0] == 100 for s in segment.analogsignals)
    assert len(segment.spiketrains) == 1 and len(segment.events) == 1 and len(segment.epochs) == 1


def test_export_csv_and_range(converted):
    api, fields = converted
    text = _download(api, fields, "csv").data.decode()
    lines = text.splitlines()
    assert len(lines) == 2 and [float(v) for v in lines[0].split(",")][:3] == [0.0, 0.002, 0.004]
    part = api.client.get(f"/datafiles/{number(fields['id'])}/download/", query_string={"format": "csv"},
                          headers={**api.headers, "Range": "bytes=0-2"})
    assert part.status_code == 206 and part.data == text.encode()[:3]


def test_export_refused_for_unknown_format_or_unconverted(converted, api):
    owner, fields = converted
    assert owner.get(f"/datafiles/{number(fields['id'])}/download/", format="xls").status_code == 400
    plain = api.upload("plain.bin", b"\x00\x01", convert=0)
    response = api.get(f"/datafiles/{number(plain['id'])}/download/", format="nix")
    assert response.status_code == 409 and response.get_json()["message_type"] == "not_converted"
