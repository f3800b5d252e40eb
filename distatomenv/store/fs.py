"""Where a store lives: a local directory or an fsspec URL.

A store is addressed by one string, ``STORE``:

* a local (or shared POSIX) path, ``run.zarr`` or ``/scratch/run.zarr``;
* an fsspec URL, ``s3://bucket/run.zarr`` (needs ``s3fs``: ``pip install
  'distatomenv[s3]'``), ``gs://...``, ``memory://...``, ...

Zarr opens either string itself (a path becomes a ``LocalStore``, a URL an
``FsspecStore``).  Everything the store layer does *besides* zarr's arrays and
groups -- the units' markers, listing the finished units, reading the root
attributes, removing a store on ``--overwrite``, its size -- goes through
:class:`StoreLocation`, which uses ``fsspec.core.url_to_fs``.

Credentials and endpoints of object stores come from the environment only
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``, ``AWS_DEFAULT_REGION``,
``AWS_PROFILE`` or the pod's IAM role): the store keeps nothing but the URL,
so nothing secret is ever written into its attributes, pickled to a worker or
printed.  Every process (rank, Dask worker) must therefore see the same
variables.

Atomicity of the markers: on a local file system a marker is written to a
temporary file and renamed (POSIX rename is atomic); on an object store one
PUT of the whole object is atomic, so it is written directly.  Object-store
listings are read fresh (fsspec's listing cache is dropped first), because
other processes write markers.
"""
from __future__ import annotations

import os
import uuid

from distatomenv.errors import StoreError
from distatomenv.io.files import replacing

__all__ = ["StoreLocation", "is_url", "location"]


def is_url(path) -> bool:
    """Whether ``path`` is an fsspec URL (``proto://...`` or a chained ``a::b``)."""
    p = os.fspath(path)
    return "://" in p or "::" in p


def location(path) -> "StoreLocation":
    """The :class:`StoreLocation` of ``path`` (a path or an fsspec URL)."""
    return path if isinstance(path, StoreLocation) else StoreLocation(path)


class StoreLocation:
    """A store's place: file system operations on it, local or remote.

    Attributes
    ----------
    path : str
        As given (what messages show and what zarr opens).
    local : bool
        True for a local path.
    fs : fsspec.AbstractFileSystem
    root : str
        The store's path within ``fs`` (no trailing slash).
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.local = not is_url(self.path)
        try:
            from fsspec.core import url_to_fs
            if self.local:
                from fsspec.implementations.local import LocalFileSystem
                self.fs, self.root = LocalFileSystem(), self.path
            else:
                self.fs, root = url_to_fs(self.path)
                self.root = root.rstrip("/")
        except ImportError as exc:
            raise StoreError(f"{self.path}: this URL needs a file system package that is not "
                             f"installed ({exc}); for s3:// install s3fs "
                             f"(pip install 'distatomenv[s3]')") from None
        except ValueError as exc:          # unknown protocol
            raise StoreError(f"{self.path}: not a usable store location ({exc})") from None

    def __repr__(self):
        return f"StoreLocation({self.path!r})"

    # -- names ------------------------------------------------------------------
    def key(self, *parts) -> str:
        """Path within ``fs`` of the entry ``parts`` (joined with '/') of the store."""
        if self.local:
            return os.path.join(self.root, *parts)
        return "/".join([self.root, *parts])

    def url(self, *parts) -> str:
        """What to show or open for the entry ``parts``: a path, or a URL."""
        if self.local:
            return os.path.join(self.path, *parts)
        return "/".join([self.path.rstrip("/"), *parts])

    def absolute(self) -> str:
        """A location valid from any directory: absolute path, or the URL."""
        return os.path.abspath(self.path) if self.local else self.path

    def refresh(self, *parts) -> None:
        """Forget cached listings (object stores), so others' writes are seen."""
        if not self.local:
            try:
                self.fs.invalidate_cache(self.key(*parts) if parts else self.root)
            except Exception:              # pragma: no cover - a cache-less fs
                pass

    # -- queries ------------------------------------------------------------------
    def exists(self) -> bool:
        """Whether anything is at the store's place (a dangling link counts)."""
        if self.local:
            return os.path.lexists(self.root)
        self.refresh()
        return self.fs.exists(self.root)

    def isdir(self) -> bool:
        if self.local:
            return os.path.isdir(self.root)
        self.refresh()
        return self.fs.isdir(self.root)

    def names(self, *parts) -> list[str] | None:
        """Names of the entries of directory ``parts`` (None when there is none)."""
        if self.local:
            try:
                return os.listdir(self.key(*parts))
            except (FileNotFoundError, NotADirectoryError):
                return None
        self.refresh(*parts)
        where = self.key(*parts)
        try:
            entries = self.fs.ls(where, detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        out = []
        for e in entries:
            name = e.rstrip("/").rsplit("/", 1)[-1]
            if e.rstrip("/") != where:     # some fs list a file as itself
                out.append(name)
        return out

    def read_bytes(self, *parts) -> bytes:
        """Content of the file ``parts``; FileNotFoundError when absent."""
        if self.local:
            with open(self.key(*parts), "rb") as fh:
                return fh.read()
        return self.fs.cat_file(self.key(*parts))

    def size(self, *parts) -> int:
        """Bytes of every file under ``parts`` (the whole store by default)."""
        if self.local:
            total = 0
            for dirpath, _dirnames, filenames in os.walk(self.key(*parts)):
                for f in filenames:
                    try:
                        total += os.stat(os.path.join(dirpath, f)).st_size
                    except FileNotFoundError:  # a temporary file that just went away
                        pass
            return total
        self.refresh(*parts)
        try:
            found = self.fs.find(self.key(*parts), detail=True)
        except FileNotFoundError:
            return 0
        return int(sum(int(d.get("size") or 0) for d in found.values()))

    def files(self, *parts) -> set[str]:
        """Paths (relative to ``parts``, '/'-separated) of every file under the
        directory ``parts``; empty when there is none.  Local: one walk; object
        store: one recursive listing."""
        where = self.key(*parts)
        out = set()
        if self.local:
            for dirpath, _dirnames, filenames in os.walk(where):
                rel = os.path.relpath(dirpath, where)
                for f in filenames:
                    out.add(f if rel == "." else f"{rel.replace(os.sep, '/')}/{f}")
            return out
        self.refresh(*parts)
        where = where.rstrip("/")
        try:
            found = self.fs.find(where)
        except FileNotFoundError:
            return out
        for f in found:
            rel = f.rstrip("/").split(where + "/", 1)[-1]
            if rel != where:
                out.add(rel)
        return out

    def marked_groups(self, *parts) -> set[str]:
        """Names of the subdirectories of ``parts`` that hold a ``zarr.json``.

        Local: one directory listing and one ``stat`` per entry.  Object
        store: one recursive listing (paginated), never a request per entry.
        """
        if self.local:
            where = self.key(*parts)
            names = self.names(*parts) or []
            return {n for n in names if os.path.isfile(os.path.join(where, n, "zarr.json"))}
        self.refresh(*parts)
        where = self.key(*parts).rstrip("/")
        try:
            found = self.fs.find(where)    # one recursive listing (no maxdepth: that walks)
        except FileNotFoundError:
            return set()
        out = set()
        for f in found:
            bits = f.rstrip("/").split(where + "/", 1)[-1].split("/")
            if len(bits) == 2 and bits[1] == "zarr.json":
                out.add(bits[0])
        return out

    # -- changes ------------------------------------------------------------------
    def write_atomic(self, data: bytes, *parts) -> None:
        """Write the file ``parts`` whole or not at all.

        Local: a temporary ``*.partial`` file beside it, then ``os.replace``.
        Object store: a single PUT, which is atomic.
        """
        target = self.key(*parts)
        if self.local:
            folder = os.path.dirname(target)
            os.makedirs(folder, exist_ok=True)
            base = os.path.basename(target).rsplit(".", 1)[0]
            # a name of its own: several processes may write the same marker
            part = os.path.join(folder, f"{base}.{uuid.uuid4().hex}.partial")
            with replacing(target, "wb", part=part) as fh:
                fh.write(data)
            return
        self.fs.pipe_file(target, data)

    def remove(self) -> None:
        """Delete the whole store (callers check first that it is ours)."""
        if self.local:
            import shutil
            shutil.rmtree(self.root)
            return
        self.fs.rm(self.root, recursive=True)
        self.refresh()
