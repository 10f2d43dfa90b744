"""Conversion types 2 (NEO I/O: NIX and NeoMatlab files written by neo) and 1 (a Neuroshare-family
format, Multi Channel Systems raw, read through neo's reader), checked object by object."""
from __future__ import annotations

from datetime import datetime

import neo
import numpy as np
import pytest
import quantities as pq

pytestmark = pytest.mark.usefixtures("worker")


def make_block() -> neo.Block:
    block = neo.Block(name="session 1", description="two-channel LFP", file_datetime=datetime(2011, 5, 10, 14, 30))
    block.annotate(subject="monkey", trials=12)
    segment = neo.Segment(name="trial 1")
    segment.annotate(condition="stim")
    block.segments.append(segment)
    lfp = neo.AnalogSignal(np.arange(200, dtype=np.float64).reshape(100, 2), units="uV", sampling_rate=1 * pq.kHz,
                           t_start=0.5 * pq.s, name="LFP")
    lfp.annotate(electrode="tetrode 3")
    segment.analogsignals.append(lfp)
    irregular = neo.IrregularlySampledSignal([0.0, 0.1, 0.35] * pq.s, [1.0, 2.0, 4.0] * pq.mV, name="irr")
    segment.irregularlysampledsignals.append(irregular)
    waveforms = np.arange(3 * 1 * 4, dtype=np.float64).reshape(3, 1, 4) * pq.mV
    train = neo.SpikeTrain([10.0, 20.0, 35.0] * pq.ms, t_stop=100 * pq.ms, waveforms=waveforms, name="unit A")
    train.annotate(quality="good")
    segment.spiketrains.append(train)
    segment.events.append(neo.Event([1.0, 2.0] * pq.s, labels=np.array(["go", "stop"]), name="triggers"))
    segment.epochs.append(neo.Epoch([0.5] * pq.s, durations=[0.25] * pq.s, labels=np.array(["baseline"]), name="periods"))
    return block


def check_block(api, fields, *, file_datetime=True):
    info = fields["extracted_info"]
    assert info["objects"] == {"block": 1, "segment": 1, "analogsignalarray": 1, "analogsignal": 2,
                               "irsaanalogsignal": 1, "spiketrain": 1, "eventarray": 1, "event": 2,
                               "epocharray": 1, "epoch": 1}, info
    (block_id,) = info["blocks"]
    block = api.neo(block_id)
    assert block["name"] == "session 1" and block["description"] == "two-channel LFP"
    assert block["annotations"]["subject"] == "monkey" and block["annotations"]["trials"] == 12
    if file_datetime:  # NeoMatlabIO does not keep it
        assert block["filedatetime"] == "2011-05-10 14:30:00"
    assert block["file_origin"].startswith(fields["title"])
    (segment_id,) = block["segment"]
    segment = api.neo(segment_id)
    assert segment["name"] == "trial 1" and segment["annotations"]["condition"] == "stim"
    channels = [api.neo(s) for s in segment["analogsignal"]]
    assert [c["name"] for c in channels] == ["LFP #0", "LFP #1"]
    for index, channel in enumerate(channels):
        assert channel["signal"]["units"] == "mv" and channel["sampling_rate"] == {"units": "hz", "data": 1000.0}
        assert channel["t_start"] == {"units": "s", "data": 0.5}
        assert channel["analogsignalarray"] == segment["analogsignalarray"][0]
        expected = np.arange(200, dtype=np.float64).reshape(100, 2)[:, index] / 1000.0
        assert np.allclose(api.neo_array(channel["neo_id"], "signal"), expected)
    group = api.neo(segment["analogsignalarray"][0])
    assert group["annotations"]["electrode"] == "tetrode 3" and group["annotations"]["name"] == "LFP"
    (irregular_id,) = segment["irsaanalogsignal"]
    assert np.allclose(api.neo_array(irregular_id, "times"), [0.0, 0.1, 0.35])
    assert np.allclose(api.neo_array(irregular_id, "signal"), [1.0, 2.0, 4.0])
    (train_id,) = segment["spiketrain"]
    train = api.neo(train_id)
    assert train["t_stop"] == {"units": "s", "data": 0.1} and train["annotations"]["quality"] == "good"
    assert train["annotations"]["name"] == "unit A"
    assert np.allclose(api.neo_array(train_id, "times"), [0.01, 0.02, 0.035])
    waveforms = api.neo_array(train_id, "waveforms")
    # NIX keeps (spikes, channels, samples); NeoMatlabIO squeezes the single channel away.
    assert waveforms.shape in ((3, 1, 4), (3, 4)) and np.allclose(waveforms.ravel(), np.arange(12))
    (events_id,) = segment["eventarray"]
    events = [api.neo(e) for e in api.neo(events_id)["event"]]
    assert sorted((e["label"], e["time"]["data"]) for e in events) == [("go", 1.0), ("stop", 2.0)]
    (epochs_id,) = segment["epocharray"]
    (epoch,) = [api.neo(e) for e in api.neo(epochs_id)["epoch"]]
    assert epoch["label"] == "baseline" and epoch["time"]["data"] == 0.5 and epoch["duration"]["data"] == 0.25


def test_nix_file_written_by_neo(api, tmp_path):
    path = tmp_path / "session.nix"
    with neo.io.NixIO(str(path), mode="ow") as io:
        io.write_block(make_block())
    fields = api.wait_state(api.upload("session.nix", path.read_bytes())["id"])
    assert fields["current_state"] == "converted", fields["operations_log"]
    assert fields["conversion_type"] == 2 and fields["operations_log"] == "neo-io: success "
    assert fields["extracted_info"]["reader"] == "NixIO"
    check_block(api, fields)


def test_neomatlab_file_written_by_neo_is_detected_by_content(api, tmp_path):
    path = tmp_path / "session.mat"
    neo.io.NeoMatlabIO(str(path)).write_block(make_block())
    # No telling extension: the content decides.
    fields = api.wait_state(api.upload("recording.dat", path.read_bytes())["id"])
    assert fields["current_state"] == "converted", fields["operations_log"]
    assert fields["conversion_type"] == 2 and fields["extracted_info"]["reader"] == "NeoMatlabIO"
    check_block(api, fields, file_datetime=False)


def write_mcs_raw(path, data: np.ndarray, rate: float) -> None:
    """A Multi Channel Systems raw file as MC_DataTool writes it ("binary conversion" with header)."""
    names = ";".join(f"El_{i + 1:02d}" for i in range(data.shape[1]))
    header = ("MC_DataTool binary conversion\r\nVersion 2.6.15\r\nMC_REC file = \"C:\\data\\rec.mcd\"\r\n"
              f"Sample rate = {rate:g}\r\nADC zero = 32768\r\nEl = 0.1\u00b5V/AD\r\nStreams = {names}\r\nEOH\r\n")
    with open(path, "wb") as f:
        f.write(header.encode("windows-1252"))
        f.write(data.astype("<u2").tobytes())


def test_neuroshare_family_mcs_raw(api, tmp_path):
    path = tmp_path / "rec.raw"
    raw = (np.arange(60, dtype=np.int64).reshape(20, 3) + 32768).astype(np.uint16)
    write_mcs_raw(path, raw, 10000)
    fields = api.wait_state(api.upload("rec.bin", path.read_bytes())["id"])
    assert fields["current_state"] == "converted", fields["operations_log"]
    assert fields["conversion_type"] == 1 and fields["operations_log"] == "neuroshare: success "
    assert fields["extracted_info"]["reader"] == "RawMCSIO"
    info = fields["extracted_info"]
    assert info["objects"]["analogsignal"] == 3 and info["objects"]["block"] == 1
    segment = api.neo(api.neo(info["blocks"][0])["segment"][0])
    signals = [api.neo(s) for s in segment["analogsignal"]]
    assert all(s["sampling_rate"]["data"] == 10000.0 for s in signals)
    for channel, signal in enumerate(signals):
        expected_uv = (raw[:, channel].astype(np.float64) - 32768) * 0.1
        assert np.allclose(api.neo_array(signal["neo_id"], "signal"), expected_uv / 1000.0, atol=1e-6)  # float32


def test_a_pickle_is_never_read(api, tmp_path):
    import pickle

    class Boom:
        def __reduce__(self):
            return (exec, ("open('/tmp/files-pickle-was-run', 'w').write('x')",))

    data = pickle.dumps(Boom())
    fields = api.wait_state(api.upload("block.pkl", data)["id"])
    assert fields["current_state"] == "non_convertible"
    import os

    assert not os.path.exists("/tmp/files-pickle-was-run")
