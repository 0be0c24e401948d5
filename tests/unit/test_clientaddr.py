"""Which address is the client: X-Forwarded-For only from trusted proxies, read from the right."""

from __future__ import annotations

import pytest

from sneakerd.config import Settings, parse_networks
from sneakerd.errors import ConfigError
from sneakerd.web.clientaddr import parse_address, resolve
from sneakerd.web.perip import PerAddressCap

PROXIES = parse_networks("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7, fd00::/8")


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() -> None:
    assert resolve("203.0.113.9", ["1.1.1.1"], ()) == "203.0.113.9"
    assert resolve("10.0.0.1", ["1.1.1.1"], ()) == "10.0.0.1"


def test_an_untrusted_peer_cannot_name_another_client() -> None:
    assert resolve("203.0.113.9", ["1.1.1.1, 10.0.0.1"], PROXIES) == "203.0.113.9"


def test_the_right_most_address_that_is_not_a_trusted_proxy_is_the_client() -> None:
    # The client forged "6.6.6.6"; the balancer (10.0.0.2) appended what it saw (198.51.100.4)
    # and an inner proxy (192.168.1.7) appended the balancer.
    header = ["6.6.6.6, 198.51.100.4, 10.0.0.2", "192.168.1.7"]
    assert resolve("10.0.0.1", header, PROXIES) == "198.51.100.4"


def test_a_trusted_peer_without_the_header_is_the_client() -> None:
    assert resolve("10.0.0.1", [], PROXIES) == "10.0.0.1"


def test_a_chain_of_only_proxies_yields_its_left_most() -> None:
    assert resolve("10.0.0.1", ["10.0.0.3, 10.0.0.2"], PROXIES) == "10.0.0.3"


def test_garbage_in_the_chain_stops_at_the_last_trusted_hop() -> None:
    assert resolve("10.0.0.1", ["1.1.1.1, not-an-ip, 10.0.0.2"], PROXIES) == "10.0.0.2"


def test_addresses_are_normalised() -> None:
    assert resolve("::ffff:10.0.0.1", ["[2001:db8::1]:4711"], PROXIES) == "2001:db8::1"
    assert resolve("fd00::5", ["198.51.100.4:1234"], PROXIES) == "198.51.100.4"
    assert parse_address("::ffff:1.2.3.4") == parse_address("1.2.3.4")
    assert parse_address("nonsense") is None


def test_trusted_proxies_setting_parses_and_refuses_junk() -> None:
    settings = Settings.from_mapping({"TRUSTED_PROXIES": " 10.0.0.0/8 ,::1,"})
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.0/8", "::1/128"]
    assert Settings.from_mapping({}).trusted_proxies == ()
    with pytest.raises(ConfigError, match=r"TRUSTED_PROXIES: '10\.0\.0\.x'"):
        Settings.from_mapping({"TRUSTED_PROXIES": "10.0.0.1, 10.0.0.x"})


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("HEADER_TIMEOUT", "0"),
        ("HEADER_TIMEOUT", "soon"),
        ("KEEPALIVE_TIMEOUT", "nan"),
        ("KEEPALIVE_TIMEOUT", "-1"),
        ("MAX_CONNECTIONS_PER_IP", "-1"),
        ("MAX_WEBSOCKETS_PER_IP", "many"),
    ],
)
def test_transport_settings_refuse_bad_values_naming_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_mapping({name: raw})


def test_transport_settings_defaults_and_overrides() -> None:
    d = Settings.from_mapping({})
    assert (d.header_timeout, d.keepalive_timeout) == (10.0, 75.0)
    assert (d.max_connections_per_ip, d.max_websockets_per_ip) == (256, 64)
    s = Settings.from_mapping(
        {
            "HEADER_TIMEOUT": "0.5",
            "KEEPALIVE_TIMEOUT": "30",
            "MAX_CONNECTIONS_PER_IP": "0",
            "MAX_WEBSOCKETS_PER_IP": "3",
        }
    )
    assert (s.header_timeout, s.keepalive_timeout) == (0.5, 30.0)
    assert (s.max_connections_per_ip, s.max_websockets_per_ip) == (0, 3)


def test_the_per_address_cap_counts_holds_and_forgets_released_addresses() -> None:
    cap = PerAddressCap(2)
    assert cap.acquire("1.1.1.1") and cap.acquire("1.1.1.1")
    assert not cap.acquire("1.1.1.1")
    assert cap.acquire("2.2.2.2")
    cap.release("1.1.1.1")
    assert cap.acquire("1.1.1.1")
    cap.release("2.2.2.2")
    assert cap.held("2.2.2.2") == 0 and "2.2.2.2" not in cap._held
    off = PerAddressCap(0)
    assert all(off.acquire("1.1.1.1") for _ in range(1000))
