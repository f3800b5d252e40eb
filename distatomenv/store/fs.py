"""Where a store lives: a local directory or an fsspec URL, through zarr's store API.

A store is addressed by one string, ``STORE``:

* a local (or shared POSIX) path, ``run.zarr`` or ``/scratch/run.zarr``;
* an fsspec URL, ``s3://bucket/run.zarr`` (needs ``s3fs``: ``pip install
  'distatomenv[s3]'``), ``gs://...``, ``memory://...``, ...

Zarr opens either string itself (a path becomes a ``LocalStore``, a URL an
``FsspecStore``).  Everything the store layer does *besides* zarr's arrays and
groups -- the units' markers, listing the finished units, reading the root
attributes, removing a store on ``--overwrite``, its size -- goes through
:class:`StoreLocation`, which drives the same two zarr store classes
(``get``, ``set``, ``list_dir``, ``list_prefix``, ``getsize_prefix``,
``delete_dir``), so local and remote stores share one code path.

Credentials and endpoints of object stores come from the environment only
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``, ``AWS_DEFAULT_REGION``,
``AWS_PROFILE`` or the pod's IAM role): the store keeps nothing but the URL,
so nothing secret is ever written into its attributes, pickled to a worker or
printed.  Every process (rank, Dask worker) must therefore see the same
variables.

Atomicity of the markers: zarr's ``LocalStore`` (from zarr 3.1.3) writes every
key to a temporary ``*.partial`` file beside it and renames it into place, so
a reader sees a marker whole or not at all; on an object store one PUT of the
whole object is atomic.  Object-store listings are read fresh (fsspec's
listing cache is dropped first), because other processes write markers.

Reads go through a read-only view of the store, so asking about a store that
does not exist never creates its directory.
"""
from __future__ import annotations

import os

from distatomenv.errors import StoreError

__all__ = ["StoreLocation", "is_url", "location"]


def is_url(path) -> bool:
    """Whether ``path`` is an fsspec URL (``proto://...`` or a chained ``a::b``)."""
    p = os.fspath(path)
    return "://" in p or "::" in p


def location(path) -> "StoreLocation":
    """The :class:`StoreLocation` of ``path`` (a path or an fsspec URL)."""
    return path if isinstance(path, StoreLocation) else StoreLocation(path)


def _sync(coro):
    """Run one of zarr's store coroutines on zarr's own event loop (the loop its
    arrays use, so an fsspec file system is never shared across loops)."""
    from zarr.core.sync import sync
    return sync(coro)


def _collect(aiterator) -> list:
    from zarr.core.sync import collect_aiterator
    return list(collect_aiterator(aiterator))


class StoreLocation:
    """A store's place: the operations on it outside zarr's arrays and groups.

    Attributes
    ----------
    path : str
        As given (what messages show and what zarr opens).
    local : bool
        True for a local path.
    store : zarr.abc.store.Store
        A read-only ``LocalStore`` or ``FsspecStore`` on the store's root;
        writes go through its writable twin.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.local = not is_url(self.path)
        try:
            from zarr.storage import FsspecStore, LocalStore
            if self.local:
                self.store = LocalStore(self.path, read_only=True)
            else:
                self.store = FsspecStore.from_url(self.path, read_only=True)
        except ImportError as exc:
            raise StoreError(f"{self.path}: this URL needs a file system package that is not "
                             f"installed ({exc}); for s3:// install s3fs "
                             f"(pip install 'distatomenv[s3]')") from None
        except ValueError as exc:          # unknown protocol
            raise StoreError(f"{self.path}: not a usable store location ({exc})") from None
        self._writable = None

    def __repr__(self):
        return f"StoreLocation({self.path!r})"

    def _writer(self):
        if self._writable is None:
            self._writable = self.store.with_read_only(False)
        return self._writable

    # -- names ------------------------------------------------------------------
    @staticmethod
    def key(*parts) -> str:
        """The store key of the entry ``parts`` (joined with '/')."""
        return "/".join(p.strip("/") for p in parts if p)

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
            where = "/".join([self.store.path.rstrip("/"), self.key(*parts)]).rstrip("/")
            try:
                self.store.fs.invalidate_cache(where)
            except Exception:              # pragma: no cover - a cache-less fs
                pass

    # -- queries ------------------------------------------------------------------
    def exists(self) -> bool:
        """Whether anything is at the store's place (a dangling link counts)."""
        if self.local:                     # a question about the root path itself
            return os.path.lexists(self.path)
        self.refresh()
        return not _sync(self.store.is_empty(""))

    def isdir(self) -> bool:
        """Whether the place is a directory (local) or holds objects (URL)."""
        if self.local:
            return os.path.isdir(self.path)
        return self.exists()

    def names(self, *parts) -> list[str]:
        """Names of the entries of directory ``parts`` (empty when there is none)."""
        self.refresh(*parts)
        try:
            found = _collect(self.store.list_dir(self.key(*parts)))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [n for n in (f.rstrip("/") for f in found) if n]

    def read_bytes(self, *parts) -> bytes:
        """Content of the file ``parts``; FileNotFoundError when absent."""
        from zarr.core.buffer import default_buffer_prototype
        key = self.key(*parts)
        try:
            buf = _sync(self.store.get(key, prototype=default_buffer_prototype()))
        except FileNotFoundError:          # a local root that does not exist
            buf = None
        if buf is None:
            raise FileNotFoundError(self.url(*parts))
        return buf.to_bytes()

    def files(self, *parts) -> set[str]:
        """Paths (relative to ``parts``, '/'-separated) of every file under the
        directory ``parts``; empty when there is none (one recursive listing)."""
        prefix = self.key(*parts)
        self.refresh(*parts)
        start = len(prefix) + 1 if prefix else 0
        try:
            found = _collect(self.store.list_prefix(prefix))
        except (FileNotFoundError, NotADirectoryError):
            return set()
        return {k[start:] for k in found if k.startswith(prefix) and k[start:]}

    def size(self, *parts) -> int:
        """Bytes of every file under ``parts`` (the whole store by default)."""
        self.refresh(*parts)
        prefix = self.key(*parts)
        for attempt in range(4):
            try:
                return int(_sync(self.store.getsize_prefix(prefix)))
            except FileNotFoundError:      # a temporary file went away while listed
                if attempt == 3:
                    raise

    def marked_groups(self, *parts) -> set[str]:
        """Names of the subdirectories of ``parts`` that hold a ``zarr.json``
        (one recursive listing, never a request per entry)."""
        out = set()
        for f in self.files(*parts):
            bits = f.split("/")
            if len(bits) == 2 and bits[1] == "zarr.json":
                out.add(bits[0])
        return out

    # -- changes ------------------------------------------------------------------
    def write_atomic(self, data: bytes, *parts) -> None:
        """Write the file ``parts`` whole or not at all (see the module's note)."""
        from zarr.core.buffer import default_buffer_prototype
        buf = default_buffer_prototype().buffer.from_bytes(data)
        _sync(self._writer().set(self.key(*parts), buf))

    def remove(self) -> None:
        """Delete the whole store (callers check first that it is ours)."""
        _sync(self._writer().delete_dir(""))
        self.refresh()
