"""The API's contract (GET /openapi.json, OpenAPI 3.1): the validator and the document come
from one field table, and the live service, fuzzed by schemathesis, keeps to it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import httpx
import jsonschema_rs
import pytest
import trio

from helpers import running_service
from pagecast.core.errors import Refused
from pagecast.core.request import START_FIELDS, parse_start, parse_stop, start_schema
from pagecast.core.settings import Settings
from pagecast.server.openapi import document

TOKEN = "contract-token"
SETTINGS = Settings()
PATHS = document("test", token=False)["paths"]
START = jsonschema_rs.Draft202012Validator(PATHS["/start"]["post"]["requestBody"]["content"]["application/json"]["schema"])
STOP = jsonschema_rs.Draft202012Validator(PATHS["/stop"]["post"]["requestBody"]["content"]["application/json"]["schema"])
NAN = float("nan")

#: For each field: values the validator takes alone (with a url and no device), and values it refuses.
SAMPLES = {
    "url": (["http://x/", " https://h:8123/lovelace", "http://x/a b"],
            [None, "", "ftp://x", "file:///etc", "x", 5, "http://", "http:// x/", "\thttp://x/", "http://x/\n", "h\tttp://x/", "http://x/" + "a" * 4096]),
    "profile": ([], [5, True]),
    "quality": ([None, "720p", "portrait", "4k"], ["8k", 720, ""]),
    "mode": ([None, "hls", "fmp4"], ["dash", 1, ""]),
    "duration": ([None, 1, 0.5, 604800], [0, -1, 604801, "60", True, NAN, float("inf")]),
    "device": ([None], ["", "  ", "\ufeff", 5, False, [], [""], ["TV", "TV"], [5]]),
    "share": ([None, True, False], ["no", 0]),
    "auth": ([None, {}, {"ha_token": "t"}, {"cookies": {"a": "b"}}, {"cookies": [{"name": "a", "value": "b", "path": "/"}]}, {"headers": {"X-A": "1"}},
              {"headers": None, "local_storage": None, "cookies": None, "ha_token": None},
              {"ha_refresh_token": "r"}, {"ha_refresh_token": "r", "ha_client_id": "http://ha.local/"}],
             ["t", [], {"password": "x"}, {"ha_token": ""}, {"ha_token": " "}, {"headers": {"Bad Name": "x"}}, {"cookies": "a=b"}, {"cookies": [{"name": "a"}]},
              {"cookies": [{"name": "a", "value": "b", "domain": None}]}, {"local_storage": {"a": 1}}, {"local_storage": []}, {"cookies": 0}, {"headers": False},
              {"ha_refresh_token": ""}, {"ha_refresh_token": 5}, {"ha_client_id": " "}]),
    "width": ([None, 160, 1280, 3840, 1280.0], [159, 3841, 1281, 1280.5, "1280", True]),
    "height": ([None, 120, 2160], [119, 2162, 721]),
    "fps": ([None, 1, 30, 60], [0, 61, 1.5, "30"]),
    "bitrate": ([None, 200, 50000], [199, 50001]),
    "device_scale_factor": ([None, 0.5, 2, 4], [0.4, 4.1, "2", NAN]),
    "rotate": ([None, 0, 90, 270, 90.0], [180, 45, "90"]),
    "keep_on": ([None], [1, "yes"]),
    "if_idle": ([None], [0, "no"]),
    "volume": ([None], [2, -0.1, "loud"]),
    "quiet": ([None], [1, "yes"]),
    "motion": ([None, "reduce", "full"], ["none", 0, ""]),
    "theme": ([None, "dark", "light"], ["blue", 1]),
    "kiosk": ([None, True, False], ["yes", 1]),
    "capture_fps": ([None, 1, 15, 30, 15.0], [0, 61, 2.5, "15", NAN]),
    "burn_in": ([None, True, False], ["yes", 0]),
}


def _accepted(body) -> bool:
    try:
        parse_start(body, SETTINGS, {})
        return True
    except Refused:
        return False


def test_every_start_field_is_in_the_document_and_has_samples():
    assert set(START_FIELDS) == set(SAMPLES)
    assert all(field.help for field in START_FIELDS.values())


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_document_and_the_validator_agree_on_each_field(name):
    good, bad = SAMPLES[name]
    for value in good:
        body = {"url": "http://x/", "device": None, name: value}
        assert START.is_valid(body) and _accepted(body), (name, value)
    for value in bad:
        body = {"device": None, name: value} if name == "url" else {"url": "http://x/", "device": None, name: value}
        assert not START.is_valid(body) and not _accepted(body), (name, value)


def test_a_start_needs_a_url_or_a_profile_and_nothing_else():
    for body in ({}, {"device": None}, {"url": "http://x/", "colour": "red"}, [], "http://x/"):
        assert not START.is_valid(body) and not _accepted(body), body
    assert START.is_valid({"profile": "doorbell"})


def test_a_stop_body_is_validated_as_documented():
    for body, parsed in (({}, (None, None)), ({"id": "a"}, ("a", None)), ({"device": "TV"}, (None, "TV")), ({"id": None, "device": None}, (None, None))):
        assert STOP.is_valid(body) and parse_stop(body) == parsed
    for body in ({"id": 1}, {"device": True}, {"name": "x"}, []):
        assert not STOP.is_valid(body)
        with pytest.raises(Refused):
            parse_stop(body)


def test_null_in_a_body_leaves_a_profiles_value_but_a_null_device_still_means_no_tv():
    profiles = {"door": {"url": "http://cam.local/", "quality": "4k", "device": "Hall TV"}}
    request = parse_start({"profile": "door", "quality": None, "url": None}, SETTINGS, profiles)
    assert (request.url, request.quality.name, request.device) == ("http://cam.local/", "4k", "Hall TV")
    assert parse_start({"profile": "door", "device": None}, SETTINGS, profiles).device is None


def test_a_body_that_breaks_the_document_is_refused_before_its_profile_is_looked_up():
    for field in ("fps", "capture_fps"):
        with pytest.raises(Refused, match=f"'{field}' must be"):
            parse_start({"profile": "nowhere", field: "x"}, SETTINGS, {})
    assert not START.is_valid({"profile": None})


async def test_openapi_json_is_served_and_says_how_to_authenticate(nursery, tmp_path):
    async with running_service(nursery, tmp_path, api_token=TOKEN) as svc, httpx.AsyncClient(base_url=f"http://127.0.0.1:{svc.port}") as client:
        doc = (await client.get("/openapi.json")).json()
    assert doc["openapi"] == "3.1.0" and doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    start = doc["paths"]["/start"]["post"]
    assert start["security"] == [{"bearer": []}] and {"400", "401", "404", "409", "413", "415", "429", "503"} <= set(start["responses"])
    assert start["requestBody"]["content"]["application/json"]["schema"] == json.loads(json.dumps(start_schema()))
    assert "security" not in doc["paths"]["/health"]["get"]


async def test_a_request_answered_before_its_body_is_read_closes_its_connection(client, pages):
    """Hypercorn keeps the connection of such a request open with its body unread, and the
    client's next request on it hangs (seen while a session runs): we close it instead."""
    started = (await client.post("/start?wait=1", json={"url": f"{pages}/dashboard.html", "quality": "720p"})).json()
    assert started["state"] == "live", started
    for _ in range(20):
        with trio.fail_after(5):
            refused = await client.put("/start", json={"url": "http://x/"})
            assert refused.status_code == 405 and refused.headers["connection"] == "close" and refused.headers["allow"] == "OPTIONS, POST"
            assert (await client.get("/health")).status_code == 200
    read = await client.post("/stop", json={"id": "nope"})
    assert read.status_code == 404 and "connection" not in read.headers
    await client.post("/stop", json={})


@pytest.mark.slow
async def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_document(nursery, tmp_path, pages):
    """Every operation fuzzed against a live service: generated starts render a local test
    page, stream only and end after a few seconds; at most one runs at once (tests/contract_hooks.py). Zero 5xx, every status, content type,
    header and body as documented, every body that breaks the schema refused, no control
    endpoint open without the token."""
    async with running_service(nursery, tmp_path, api_token=TOKEN, max_sessions=1) as svc:
        env = {
            **os.environ,
            "CONTRACT_PAGE": f"{pages}/dashboard.html",
            "SCHEMATHESIS_HOOKS": "contract_hooks",
            "PYTHONPATH": str(Path(__file__).parent),
            "NO_COLOR": "1",
        }
        command = [
            str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(Path(__file__).with_name("contract.toml")),
            "run", f"http://127.0.0.1:{svc.port}/openapi.json",
            "-H", f"Authorization: Bearer {TOKEN}",
            "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
                        "response_headers_conformance,negative_data_rejection,ignored_auth,unsupported_method",
            # live.mp4 never ends while its session runs: a fuzzer would only time out on it.
            "--exclude-operation-id", "progressive",
            "--max-examples", "10", "--seed", "1", "--no-color",
        ]
        with trio.fail_after(100):
            done = await trio.run_process(command, env=env, cwd=tmp_path, capture_stdout=True, check=False)  # its cache stays out of the tree
        output = done.stdout.decode(errors="replace")
        assert done.returncode == 0, output[-6000:]
        assert " passed" in output, output[-3000:]  # it ran cases, not nothing


def test_every_answer_and_its_schema_come_from_one_class():
    from dataclasses import fields

    from pagecast.core.answers import (
        DeviceAnswer, ErrorAnswer, HealthAnswer, ScreenAnswer, SessionAnswer, StatusAnswer, schema_of,
    )

    schemas = document("test", token=False)["components"]["schemas"]
    for cls in (ErrorAnswer, StatusAnswer, SessionAnswer, ScreenAnswer, DeviceAnswer, HealthAnswer):
        name = cls.__name__.removesuffix("Answer")
        assert schemas[name] == schema_of(cls, lambda c: {"$ref": f"#/components/schemas/{c.__name__.removesuffix('Answer')}"})
        assert list(schemas[name]["properties"]) == [f.name for f in fields(cls)]
        assert all(p["description"] for p in schemas[name]["properties"].values()), name
    assert PATHS["/status"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Status"}


async def test_a_live_answer_has_exactly_its_classes_fields(nursery, tmp_path, pages):
    from dataclasses import fields

    from pagecast.core.answers import SessionAnswer

    doc = document("test", token=False)
    status = jsonschema_rs.Draft202012Validator({**doc["components"]["schemas"]["Status"], "components": doc["components"]})
    async with running_service(nursery, tmp_path) as svc:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{svc.port}", timeout=30) as client:
            started = (await client.post("/start?wait=1", json={"url": f"{pages}/dashboard.html", "quality": "720p"})).json()
            assert set(started) == {f.name for f in fields(SessionAnswer)}, set(started) ^ {f.name for f in fields(SessionAnswer)}
            answer = (await client.get("/status")).json()
            status.validate(answer)
            await client.post("/stop", json={})
