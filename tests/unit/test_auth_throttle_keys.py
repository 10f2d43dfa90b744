"""Which client a login attempt counts against (services/auth/throttle.py)."""
import pytest

from services.auth.throttle import address_key, backoff_key, client_network


@pytest.mark.parametrize("raw,client", [
    ("192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:ffff:ffff:fffe", "2001:db8:1:2::/64"),  # one subscriber's /64 is one client
    ("::ffff:192.0.2.7", "192.0.2.7"),  # an IPv4 client seen through an IPv6 socket
    (None, "unknown"),
    ("not an address", "not an address"),
])
def test_an_ipv6_client_is_its_64_and_an_ipv4_client_its_address(raw, client):
    assert client_network(raw) == client


def test_rotating_addresses_inside_a_64_earns_no_fresh_budget():
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff:1")
    assert backoff_key("Ada", "2001:db8::1") == backoff_key("ada", "2001:db8::2")
    assert address_key("2001:db8:0:1::1") != address_key("2001:db8:0:2::1")
