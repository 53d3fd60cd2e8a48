"""Thin task for `image.build`: the worker's side of the builder (BuildHost).

Owner: helper H (see /work/notes/builds.md).
"""

BUILD_HANDLERS: dict = {}
