"""Request bodies of the neo service are bounded while they are read (issue 11, item 4): JSON bodies
by MAX_JSON_BYTES, multipart creates and updates (arrays as .npy parts) by MAX_ARRAY_UPLOAD_BYTES."""
import json

import numpy as np
import pytest

from tests.integration.neo.conftest import PREFIX, as_user, h5_files, minimal_body, npy_bytes
from tests.request_bodies import (
    MiB,
    EndlessBody,
    EndlessMultipart,
    assert_payload_too_large,
    multipart,
    send_chunked,
    send_declared,
)

JSON_LIMIT = 64 * 1024
ARRAY_LIMIT = 2 * MiB
MULTIPART_LIMIT = ARRAY_LIMIT + MiB  # and the multipart framing


@pytest.fixture(scope="module")
def small(neo_config):
    from services.neo.app import create_app

    return create_app({**neo_config, "MAX_JSON_BYTES": JSON_LIMIT, "MAX_ARRAY_UPLOAD_BYTES": ARRAY_LIMIT}).test_client()


@pytest.fixture
def owner(unique):
    return as_user(8_800_001, f"limits_{unique}")


def _signal_form(values: np.ndarray) -> tuple[bytes, str]:
    fields = {**minimal_body("analogsignal"), "signal": {"units": "mV"}}
    return multipart({"json": json.dumps(fields), "signal": (npy_bytes(values), "signal.npy")})


def test_a_chunked_json_body_past_the_limit_is_413_and_the_service_keeps_answering(small, owner, counts, data_dir):
    before, files = counts("segment", "analogsignal"), h5_files(data_dir)
    for path in (f"{PREFIX}/segment/", f"{PREFIX}/analogsignal/", "/labels/", "/selections/"):
        endless = EndlessBody()
        assert_payload_too_large(send_chunked(small, "POST", path, endless, headers=owner), JSON_LIMIT)
        assert endless.served <= JSON_LIMIT + 1
    assert counts("segment", "analogsignal") == before and h5_files(data_dir) == files  # nothing stored
    response = small.post(f"{PREFIX}/segment/", json={"name": "after"}, headers=owner)
    assert response.status_code == 201, response.get_json()


def test_a_declared_length_past_the_limit_is_413_without_reading(client, small, owner):
    default = 256 * MiB  # MAX_JSON_BYTES
    assert_payload_too_large(send_declared(client, "POST", f"{PREFIX}/segment/", default + 1, headers=owner), default)
    response = send_declared(small, "POST", f"{PREFIX}/analogsignal/", MULTIPART_LIMIT + 1,
                             content_type="multipart/form-data; boundary=x", headers=owner)
    assert_payload_too_large(response, MULTIPART_LIMIT)
    assert client.post(f"{PREFIX}/segment/", json={"name": "after"}, headers=owner).status_code == 201


def test_multipart_arrays_may_be_larger_than_json_bodies_and_are_bounded_too(small, owner, counts, data_dir):
    values = np.arange(JSON_LIMIT, dtype=np.float64)  # 8 times the JSON limit
    body, content_type = _signal_form(values)
    response = send_chunked(small, "POST", f"{PREFIX}/analogsignal/", body, content_type=content_type, headers=owner)
    assert response.status_code == 201, response.get_json()

    before, files = counts("analogsignal"), h5_files(data_dir)
    endless = EndlessMultipart("limits-boundary", "signal",
                               {"json": json.dumps({**minimal_body("analogsignal"), "signal": {"units": "mV"}})})
    response = send_chunked(small, "POST", f"{PREFIX}/analogsignal/", endless,
                            content_type="multipart/form-data; boundary=limits-boundary", headers=owner)
    assert_payload_too_large(response, MULTIPART_LIMIT)
    assert endless.served <= MULTIPART_LIMIT + 1
    assert counts("analogsignal") == before and h5_files(data_dir) == files
    # JSON bodies on the same route keep their own limit
    response = send_chunked(small, "POST", f"{PREFIX}/analogsignal/", EndlessBody(), headers=owner)
    assert_payload_too_large(response, JSON_LIMIT)
