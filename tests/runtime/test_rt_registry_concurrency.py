"""Missing layers download concurrently; layers already in the store are not fetched."""

import os
import threading
import uuid

from registry import file_layer

from workers.runtime.registry import RemoteRef, pull

LAYER_BYTES = 6 << 20


def test_layers_download_concurrently(registry, store):
    name = f"conc/many-{uuid.uuid4().hex[:8]}"
    layers = [file_layer(f"data/{i}", os.urandom(LAYER_BYTES)) for i in range(3)]
    built = registry.push_image(name, layers)

    lock = threading.Lock()
    in_flight, peak, threads = set(), [0], set()

    def progress(event):
        with lock:
            if event["status"] == "Downloading":
                in_flight.add(event["id"])
                threads.add(threading.get_ident())
                peak[0] = max(peak[0], len(in_flight))
            elif event["status"] == "Download complete":
                in_flight.discard(event["id"])

    pull(store, RemoteRef.parse(f"{registry.host}/{name}"), insecure=True, progress=progress)
    assert len(threads) == 3
    assert peak[0] >= 2
    assert all(store.has_layer(d) for d in built["diff_ids"])


def test_concurrency_one_queues_the_rest(registry, store):
    name = f"conc/one-{uuid.uuid4().hex[:8]}"
    built = registry.push_image(name, [file_layer(f"f{i}", os.urandom(1024)) for i in range(3)])
    events = []
    pull(store, RemoteRef.parse(f"{registry.host}/{name}"), insecure=True,
         progress=events.append, concurrency=1)
    waiting = [e["id"] for e in events if e["status"] == "Waiting"]
    assert waiting == [d[7:19] for d in built["layer_digests"][1:]]


def test_shared_base_layer_already_exists(registry, store, busybox_tar):
    base = f"conc/base-{uuid.uuid4().hex[:8]}"
    app = f"conc/app-{uuid.uuid4().hex[:8]}"
    registry.push_image(base, [busybox_tar])
    built = registry.push_image(app, [busybox_tar, file_layer("app/run", b"#!/bin/sh\n")])
    pull(store, RemoteRef.parse(f"{registry.host}/{base}"), insecure=True)

    fetched = []
    events = []

    def progress(event):
        events.append(event)
        if event["status"] == "Downloading":
            fetched.append(event["id"])

    result = pull(store, RemoteRef.parse(f"{registry.host}/{app}"), insecure=True,
                  progress=progress)
    base_id, app_id = (d[7:19] for d in built["layer_digests"])
    assert {"status": "Already exists", "id": base_id, "progressDetail": {}} in events
    assert set(fetched) == {app_id}
    assert result.layers_skipped == [built["diff_ids"][0]]
    assert result.downloaded
