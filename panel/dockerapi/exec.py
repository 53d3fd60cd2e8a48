"""docker exec, the plain endpoints: create, inspect, resize. (`POST /exec/{id}/start`
hijacks the connection: the front server serves it, see exec_stream.py.)"""

import asyncio

from asgiref.sync import sync_to_async
from django.http import HttpResponse, JsonResponse

from panel.containers import execs, services
from panel.containers.models import ExecInstance

from .common import endpoint, json_body, qint

RESIZE_WAIT = 10.0  # Docker waits this long for a just-started exec to be ready to resize


def _create(request, ref):
    container = services.resolve(request.user, ref)
    instance = execs.create(acting_user=request.user, container=container,
                            config=json_body(request))
    return JsonResponse({"Id": instance.id}, status=201)


def inspect_shape(instance: ExecInstance) -> dict:
    c = instance.config
    cmd = c.get("Cmd") or [""]
    return {
        "CanRemove": False,
        "ContainerID": instance.container_id,
        "DetachKeys": c.get("DetachKeys", ""),
        "ExitCode": instance.exit_code,
        "ID": instance.id,
        "OpenStderr": bool(c.get("AttachStderr")),
        "OpenStdin": bool(c.get("AttachStdin")),
        "OpenStdout": bool(c.get("AttachStdout")),
        "ProcessConfig": {
            "arguments": cmd[1:],
            "entrypoint": cmd[0],
            "privileged": bool(c.get("Privileged")),
            "tty": bool(c.get("Tty")),
            "user": c.get("User", ""),
        },
        "Running": instance.running,
        "Pid": instance.pid,
    }


def _inspect(request, exec_id):
    return JsonResponse(inspect_shape(execs.visible(request.user, exec_id)))


async def _resize(request, exec_id):
    rows, cols = execs.check_size(qint(request, "h", 0), qint(request, "w", 0))
    instance = await sync_to_async(execs.visible)(request.user, exec_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RESIZE_WAIT
    while True:
        if instance.started_at is None:
            await sync_to_async(execs.remember_size)(acting_user=request.user,
                                                     instance=instance, rows=rows, cols=cols)
            instance = await sync_to_async(execs.visible)(request.user, exec_id)
            if instance.started_at is None:
                return HttpResponse(status=200)
        if instance.exit_code is not None:
            return HttpResponse(status=200)  # it has ended: nothing to resize
        if instance.running:
            from workers.runtime.execs import ExecError, resize

            try:
                reply = await asyncio.to_thread(resize, execs.exec_dir(instance.container_id),
                                                instance.id, rows, cols)
            except (ExecError, OSError):
                return HttpResponse(status=200)  # the container has ended, and the exec
            if reply == "ok" or "no tty" in reply:
                return HttpResponse(status=200)
        if loop.time() > deadline:
            return JsonResponse({"message": "timeout waiting for exec session ready"},
                                status=500)
        await asyncio.sleep(0.05)
        instance = await sync_to_async(execs.visible)(request.user, exec_id)


container_exec = endpoint(post=_create)
exec_inspect = endpoint(get=_inspect)
exec_resize = endpoint(post=_resize)
