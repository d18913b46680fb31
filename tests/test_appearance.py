"""A page's look as Chromium is told it: media features, animation rate, Home Assistant's
localStorage settings and the kiosk script, as tables."""

from __future__ import annotations

import json

import pytest

from pagecast.core.appearance import KIOSK_SCRIPT, REDUCED_ANIMATION_RATE, Appearance, animation_rate, local_storage, media_features, scripts
from pagecast.core.credentials import storage_script
from pagecast.core.page import busy_step
from pagecast.core.request import Auth


@pytest.mark.parametrize(
    "look, features, rate",
    [
        (Appearance(), [{"name": "prefers-reduced-motion", "value": "reduce"}], REDUCED_ANIMATION_RATE),
        (Appearance(motion="full"), [], None),
        (Appearance(motion="full", theme="dark"), [{"name": "prefers-color-scheme", "value": "dark"}], None),
        (Appearance(theme="light"), [{"name": "prefers-reduced-motion", "value": "reduce"}, {"name": "prefers-color-scheme", "value": "light"}],
         REDUCED_ANIMATION_RATE),
    ],
)
def test_reduced_motion_and_a_theme_are_media_features_and_reduced_motion_speeds_up_document_animations(look, features, rate):
    assert media_features(look) == features
    assert animation_rate(look) == rate


def test_a_reduced_transition_ends_within_one_frame_at_any_capture_rate():
    assert 1000.0 / REDUCED_ANIMATION_RATE < 1000.0 / 60  # a 1 s transition lasts under a 60 fps frame


@pytest.mark.parametrize(
    "look, items",
    [
        (Appearance(), []),
        (Appearance(kiosk=True), [("dockedSidebar", '"always_hidden"')]),
        (Appearance(theme="dark"), [("selectedTheme", '{"theme": "default", "dark": true}')]),
        (Appearance(theme="light", kiosk=True), [("dockedSidebar", '"always_hidden"'), ("selectedTheme", '{"theme": "default", "dark": false}')]),
    ],
)
def test_home_assistant_keeps_sidebar_and_theme_as_json_in_local_storage(look, items):
    assert local_storage(look) == items


def test_only_a_kiosk_view_gets_the_script_that_hides_home_assistants_top_bar():
    assert scripts(Appearance()) == []
    assert scripts(Appearance(kiosk=True)) == [KIOSK_SCRIPT]
    assert "hui-root" in KIOSK_SCRIPT and ".header{display:none" in KIOSK_SCRIPT


def test_the_users_own_local_storage_wins_over_the_looks_defaults():
    script = storage_script("http://ha.local:8123/lovelace/0", Auth(local_storage=(("selectedTheme", "mine"),)),
                            defaults=[("selectedTheme", "look"), ("dockedSidebar", '"always_hidden"')])
    items = json.loads(script.split("for (const [k, v] of ", 1)[1].split(") localStorage", 1)[0])
    assert items == [["selectedTheme", "look"], ["dockedSidebar", '"always_hidden"'], ["selectedTheme", "mine"]]  # set in order: last wins


@pytest.mark.parametrize(
    "fps, capture_fps, step",
    [(30, None, 1), (30, 30, 1), (30, 15, 2), (30, 10, 3), (30, 12, 3), (30, 1, 30), (25, 15, 2), (10, 15, 1)],
)
def test_a_changing_page_is_drawn_on_every_nth_slot_so_that_it_is_captured_at_most_capture_fps(fps, capture_fps, step):
    assert busy_step(fps, capture_fps) == step


def test_the_busy_step_is_the_shortest_that_keeps_to_capture_fps():
    for fps in range(1, 61):
        for capture_fps in range(1, fps + 1):
            step = busy_step(fps, capture_fps)
            assert fps / step <= capture_fps and (step == 1 or fps / (step - 1) > capture_fps), (fps, capture_fps)


def test_burn_in_moves_go_round_places_within_two_pixels_of_the_page_s_own():
    from pagecast.core.appearance import BURN_IN_OFFSETS, burn_in_move

    assert BURN_IN_OFFSETS[0] == (0, 0) and all(abs(x) <= 2 and abs(y) <= 2 for x, y in BURN_IN_OFFSETS)
    assert "translate(2px, 0px)" in burn_in_move(1) and burn_in_move(len(BURN_IN_OFFSETS)) == burn_in_move(0)
    assert scripts(Appearance(burn_in=180.0)) == []  # moved by the renderer, not by a script in the page
