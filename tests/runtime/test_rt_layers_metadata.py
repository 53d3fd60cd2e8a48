"""What real images carry is kept: owners, modes with setuid/setgid/sticky, xattrs (file
capabilities, user.*), hard links, fifos, device nodes under dev/, mtimes."""

import io
import os
import stat

from layerkit import make_tar

from workers.runtime.images import ImageStore

# a file capability (cap_net_raw+ep), as `setcap` stores it: VFS_CAP_REVISION_2
CAP_NET_RAW = bytes.fromhex("0100000200200000000000000000000000000000")


def test_metadata_kept(state_root):
    store = ImageStore(state_root)
    tar = make_tar([
        ("bin/", "dir", None),
        ("bin/su", "file", {"mode": 0o4755, "uid": 0, "gid": 0}),
        ("bin/wall", "file", {"mode": 0o2755, "uid": 0, "gid": 5}),
        ("bin/ping", "file", {"mode": 0o755,
                              "pax_headers": {"SCHILY.xattr.security.capability":
                                              CAP_NET_RAW.decode("utf-8", "surrogateescape")}}),
        ("home/", "dir", None),
        ("home/app/", "dir", {"mode": 0o750, "uid": 1000, "gid": 1001}),
        ("home/app/data", "file", {"uid": 1000, "gid": 1001, "mtime": 1234567890,
                                   "pax_headers": {"SCHILY.xattr.user.note": "hello",
                                                   "SCHILY.xattr.trusted.overlay.opaque": "y",
                                                   "SCHILY.xattr.user.overlay.redirect": "/x"}}),
        ("home/app/link", "hard", "home/app/data"),
        ("shared/", "dir", {"mode": 0o1777}),
        ("dev/", "dir", None),
        ("dev/null", "chr", {"devmajor": 1, "devminor": 3, "mode": 0o666}),
        ("dev/loop0", "blk", {"devmajor": 7, "devminor": 0, "mode": 0o660, "gid": 6}),
        ("dev/console", "chr", {"devmajor": 5, "devminor": 1, "mode": 0o620, "gid": 5}),
        ("run/", "dir", None), ("run/fifo", "fifo", {"mode": 0o600, "uid": 33}),
    ], gz=True)
    d = store.layer_dir(store.add_layer_tar(io.BytesIO(tar)))

    def st(p):
        return os.lstat(os.path.join(d, p))

    assert stat.S_IMODE(st("bin/su").st_mode) == 0o4755
    assert (stat.S_IMODE(st("bin/wall").st_mode), st("bin/wall").st_gid) == (0o2755, 5)
    assert os.getxattr(os.path.join(d, "bin/ping"), "security.capability") == CAP_NET_RAW
    app = st("home/app")
    assert (stat.S_IMODE(app.st_mode), app.st_uid, app.st_gid) == (0o750, 1000, 1001)
    data = st("home/app/data")
    assert (data.st_uid, data.st_gid, int(data.st_mtime)) == (1000, 1001, 1234567890)
    assert os.getxattr(os.path.join(d, "home/app/data"), "user.note") == b"hello"
    # overlayfs' own xattrs never come from a layer tar
    assert os.listxattr(os.path.join(d, "home/app/data")) == ["user.note"]
    assert data.st_ino == st("home/app/link").st_ino and data.st_nlink == 2
    assert stat.S_IMODE(st("shared").st_mode) == 0o1777
    null, loop, console = st("dev/null"), st("dev/loop0"), st("dev/console")
    assert stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1 \
        and os.minor(null.st_rdev) == 3 and stat.S_IMODE(null.st_mode) == 0o666
    assert stat.S_ISBLK(loop.st_mode) and loop.st_rdev == os.makedev(7, 0) and loop.st_gid == 6
    assert stat.S_ISCHR(console.st_mode) and console.st_rdev == os.makedev(5, 1)
    fifo = st("run/fifo")
    assert stat.S_ISFIFO(fifo.st_mode) and fifo.st_uid == 33
