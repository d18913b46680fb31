"""The address TVs are told: which interface is named when pagecast listens on all of them, and
when the log warns that TVs cannot reach it."""

from __future__ import annotations

import pytest

from pagecast.core.address import pick_address, reachability

LO = ("lo", "127.0.0.1")
DOCKER = ("docker0", "172.17.0.1")
BRIDGE = ("br-3f2a9c", "172.18.0.1")
VETH = ("veth12ab", "169.254.3.1")
LAN = ("eth0", "192.168.1.5")
WIFI = ("wlan0", "192.168.1.6")
VIRBR = ("virbr0", "192.168.122.1")


@pytest.mark.parametrize("interfaces, picked", [
    ([LO, LAN], "192.168.1.5"),
    ([LO, DOCKER, LAN], "192.168.1.5"),  # docker0 first in the system's order: still the LAN
    ([LO, BRIDGE, VETH, VIRBR, WIFI], "192.168.1.6"),
    ([LAN, WIFI], "192.168.1.5"),  # the system's order among real interfaces
    ([LO, DOCKER], "172.17.0.1"),  # nothing better: the bridge (and a warning)
    ([LO], "127.0.0.1"),
    ([], "127.0.0.1"),
])
def test_listening_on_every_interface_names_the_first_that_is_no_loopback_or_bridge(interfaces, picked):
    assert pick_address(interfaces) == picked


@pytest.mark.parametrize("url, interfaces, warning", [
    ("http://192.168.1.5:8000", [LO, DOCKER, LAN], None),
    ("http://pagecast.lan:8000", [LO, LAN], None),  # a name: the user's choice, trusted
    ("http://127.0.0.1:8000", [LO, LAN], "TVs cannot reach http://127.0.0.1:8000: 127.0.0.1 is this machine's loopback address; "
     "set PAGECAST_PUBLIC_URL to this machine's address on the TVs' network (e.g. http://192.168.1.5:8000)"),
    ("http://localhost:8000", [LO], "localhost is this machine's loopback address; set PAGECAST_PUBLIC_URL to this machine's address on the TVs' network. "),
    ("http://[::1]:8000", [LO, LAN], "::1 is this machine's loopback address"),
    ("http://172.17.0.1:8000", [LO, DOCKER], "TVs cannot reach http://172.17.0.1:8000: 172.17.0.1 is on docker0, a bridge to containers or VMs"),
    ("http://172.18.0.1:8000", [LO, BRIDGE, WIFI], "172.18.0.1 is on br-3f2a9c, a bridge to containers or VMs on this machine, not the TVs' network; "
     "set PAGECAST_PUBLIC_URL to this machine's address on the TVs' network (e.g. http://192.168.1.6:8000)"),
    ("http://192.168.122.1:8000", [LO, VIRBR, LAN], "is on virbr0"),
    ("http://172.17.0.5:8000", [("eth0", "172.17.0.5")], None),  # inside a container: its eth0 looks like any LAN
])
def test_the_start_log_warns_when_tvs_cannot_reach_the_url_they_are_told(url, interfaces, warning):
    told, warned = reachability(url, interfaces)
    assert told == f"TVs will fetch streams from {url} (set PAGECAST_PUBLIC_URL to change it)"
    if warning is None:
        assert warned is None
    else:
        assert warned is not None and warning in warned
