"""Starting and stopping: POST /start, POST /stop, and GET /devices (the TVs to start on)."""

from __future__ import annotations

import trio
from quart import Blueprint

from ...core.answers import DeviceAnswer, DevicesAnswer, StoppedAnswer, to_json
from ...core.request import parse_start, parse_stop
from ...session.cast_link import peek
from ..web import Context, answer_started, ok, read_json


def routes(ctx: Context) -> Blueprint:
    bp = Blueprint("control", __name__)
    supervisor, settings = ctx.supervisor, ctx.settings

    @bp.post("/start")
    async def start():
        body = await read_json(settings.max_body_bytes)
        req = parse_start(body, settings, ctx.profiles.current if ctx.profiles else {})
        started = await supervisor.start(req)
        return await answer_started(ctx, started.session, joined=started.joined)

    @bp.post("/stop")
    async def stop():
        sid, device = parse_stop(await read_json(settings.max_body_bytes))
        if sid is not None:
            ctx.session(sid)
        stopped = supervisor.stop(session_id=sid, device=device)
        return ok(to_json(StoppedAnswer([s.id for s in stopped])))

    @bp.get("/devices")
    async def devices():
        """Known Cast devices, what each shows (for those a session holds) and its session."""
        if supervisor.directory.unreachable:
            await supervisor.directory.refresh_static()  # a TV switched on since the last poll shows up now
        found = supervisor.directory.list()
        owners = {d.uuid: supervisor.by_device(d) for d in found}
        screens = {}

        async def look(device) -> None:
            owner = owners[device.uuid]
            on = owner.screen_on(device.uuid) if owner is not None else None
            if on is not None and on.watcher.screen is not None:
                screens[device.uuid] = on.watcher.screen
            else:
                screens[device.uuid] = await peek(device, settings.cast_connect_timeout)

        async with trio.open_nursery() as nursery:
            for device in found:
                nursery.start_soon(look, device)
        out = []
        for device in found:
            owner, screen = owners[device.uuid], screens.get(device.uuid)
            out.append(DeviceAnswer(
                **device.public(),
                session=owner.id if owner is not None else None,
                reachable=not isinstance(screen, str),
                current_app=None if isinstance(screen, str) or screen is None else (screen.app_name or screen.app_id),
                screen=screen if isinstance(screen, str) or screen is None else screen.public(),
            ))
        return ok(to_json(DevicesAnswer(
            devices=out, mdns=settings.mdns, static_hosts=list(settings.cast_hosts),
            unreachable=dict(supervisor.directory.unreachable), default_device=settings.default_device or None,
        )))

    return bp
