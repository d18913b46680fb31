"""The command line: JSON logs carry structured fields; the virtual TV has its own flags."""

from __future__ import annotations

import json
import logging

from pagecast.cli import JsonFormatter, main


def test_json_log_lines_carry_the_structured_fields_of_an_event():
    record = logging.LogRecord("pagecast.cast", logging.INFO, __file__, 1, "session %s: %s", ("abc", "stopped on the TV"), None)
    record.fields = {"event": "device_stop", "session": "abc", "device": "Living Room TV", "reason": "stopped on the TV"}
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "session abc: stopped on the TV" and line["event"] == "device_stop" and line["device"] == "Living Room TV"


def test_pagecast_virtual_tv_help_is_the_virtual_tvs_own(capsys):
    try:
        main(["virtual-tv", "--help"])
    except SystemExit as exc:
        assert exc.code == 0
    assert "usage: pagecast virtual-tv" in capsys.readouterr().out
