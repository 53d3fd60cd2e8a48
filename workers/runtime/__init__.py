"""Dockyard container runtime: plain Python (stdlib + ctypes), no Django.

Keep this module light: the shim is started with ``python -S -m workers.runtime.shim``
and imports this package first. Import the submodules explicitly::

    from workers.runtime.container import Runtime
    from workers.runtime.images import ImageStore
    from workers.runtime.spec import ContainerSpec
"""
