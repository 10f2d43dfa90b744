"""An export reads each signal's arrays as .npy, never as JSON: a signal longer than the neo
service's JSON limit (JSON_MAX_SAMPLES, made small here) still exports whole."""
from __future__ import annotations

import io

import h5py
import numpy as np
import pytest

from tests.integration.files.conftest import number

pytestmark = pytest.mark.usefixtures("worker")
LIMIT = 1000


@pytest.fixture(scope="module")
def stack_config(stack_config):
    return {**stack_config, "JSON_MAX_SAMPLES": LIMIT}


def test_a_signal_longer_than_the_json_limit_exports_whole(api):
    row = np.arange(5 * LIMIT, dtype=float)
    fields = api.wait_state(api.upload("long.csv", (",".join(map(str, row)) + "\n").encode())["id"])
    assert fields["current_state"] == "converted", fields["operations_log"]
    response = api.get(f"/datafiles/{number(fields['id'])}/download/", format="hdf5")
    assert response.status_code == 200, response.get_json()
    with h5py.File(io.BytesIO(response.data), "r") as f:
        assert np.array_equal(f["block_0/segment_0/analogsignal_0"][()].ravel(), row)
