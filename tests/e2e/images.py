"""Builds container images offline for the tests: layer tars, then a docker-archive (as
`docker save` writes it) or an oci-archive (as `podman save --format oci-archive` writes it),
with tarfile and hashlib only."""
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile

BUSYBOX = shutil.which("busybox") or "/bin/busybox"


def is_static(path):
    """A static binary has no PT_INTERP program header (no dynamic loader)."""
    try:
        with open(path, "rb") as f:
            return b"/lib64/ld-linux" not in f.read()
    except OSError:
        return False


def sha(data):
    return hashlib.sha256(data).hexdigest()


def layer(entries):
    """entries: (path, kind, content, mode, uid) with kind file|dir|symlink|whiteout; returns
    the uncompressed tar's bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for path, kind, content, mode, uid in entries:
            info = tarfile.TarInfo(path)
            info.mode, info.uid, info.gid, info.mtime = mode, uid, uid, 1700000000
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = content
                t.addfile(info)
            elif kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = content
                t.addfile(info)
            else:
                data = content if isinstance(content, bytes) else content.encode()
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def busybox_layer(extra=()):
    """A root filesystem: static busybox as /bin/sh & co, /etc/passwd with an app user."""
    with open(BUSYBOX, "rb") as f:
        bb = f.read()
    entries = [("bin", "dir", None, 0o755, 0), ("bin/busybox", "file", bb, 0o755, 0)]
    for tool in ("sh", "id", "cat", "ls", "echo", "sleep", "touch", "ps", "env", "pwd",
                 "mkdir", "test", "hostname", "wc", "grep", "stat"):
        entries.append((f"bin/{tool}", "symlink", "busybox", 0o777, 0))
    entries += [
        ("etc", "dir", None, 0o755, 0),
        ("etc/passwd", "file", "root:x:0:0:root:/root:/bin/sh\n"
                               "app:x:1000:1000:app:/home/app:/bin/sh\n", 0o644, 0),
        ("etc/group", "file", "root:x:0:\napp:x:1000:\n", 0o644, 0),
        ("home", "dir", None, 0o755, 0), ("home/app", "dir", None, 0o755, 1000),
        ("tmp", "dir", None, 0o1777, 0), ("proc", "dir", None, 0o755, 0),
        ("dev", "dir", None, 0o755, 0), ("sys", "dir", None, 0o755, 0),
    ]
    return layer(list(entries) + list(extra))


def config(layers, entrypoint=None, cmd=None, env=None, workdir=None, user=None):
    c = {"Env": env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
    if entrypoint is not None:
        c["Entrypoint"] = entrypoint
    if cmd is not None:
        c["Cmd"] = cmd
    if workdir:
        c["WorkingDir"] = workdir
    if user:
        c["User"] = user
    return {"created": "2024-01-02T03:04:05Z", "architecture": "amd64", "os": "linux",
            "config": c,
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(l) for l in layers]}}


def _add(t, name, data):
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), 1700000000
    t.addfile(info, io.BytesIO(data))


def docker_archive(path, tags, layers, cfg):
    """`docker save` (classic form): <id>/layer.tar, <config hex>.json, manifest.json."""
    cfg_bytes = json.dumps(cfg).encode()
    cid = sha(cfg_bytes)
    with tarfile.open(path, "w") as t:
        names = []
        for l in layers:
            d = sha(l)
            _add(t, f"{d}/layer.tar", l)
            names.append(f"{d}/layer.tar")
        _add(t, f"{cid}.json", cfg_bytes)
        _add(t, "manifest.json", json.dumps(
            [{"Config": f"{cid}.json", "RepoTags": tags, "Layers": names}]).encode())
    return cid


def oci_archive(path, ref_name, layers, cfg, compress=True):
    """An OCI image layout in a tar, layers gzip-compressed, the name as podman writes it."""
    cfg_bytes = json.dumps(cfg).encode()
    blobs = {sha(cfg_bytes): cfg_bytes}
    descs = []
    for l in layers:
        data = gzip.compress(l, mtime=0) if compress else l
        blobs[sha(data)] = data
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar" +
                      ("+gzip" if compress else ""), "digest": "sha256:" + sha(data),
                      "size": len(data)})
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": "sha256:" + sha(cfg_bytes),
                                      "size": len(cfg_bytes)},
                           "layers": descs}).encode()
    blobs[sha(manifest)] = manifest
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json",
         "digest": "sha256:" + sha(manifest), "size": len(manifest),
         "annotations": {"org.opencontainers.image.ref.name": ref_name}}]}
    with tarfile.open(path, "w") as t:
        _add(t, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        _add(t, "index.json", json.dumps(index).encode())
        for h, data in blobs.items():
            _add(t, f"blobs/sha256/{h}", data)
    return "sha256:" + sha(manifest)
