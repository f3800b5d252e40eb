"""The distatomenv store: one Zarr v3 tree per run, written by many writers.

See :mod:`distatomenv.store.schema` for the layout and the ownership rule
(no two writers ever write the same chunk), :mod:`.writer` for creating and
filling a store, and :mod:`.reader` for reading one.

This layer imports only numpy, zarr, dask (reader), xarray (optional, in
to_xarray only) and, of the package, the layers below it (errors; info also
the SF model and the --neighbors spelling of distatomenv.descriptors).  Its
files outside zarr's arrays (markers, listings) go through zarr's store API
(:mod:`.fs`), except that ``--overwrite`` renames a local store aside and
deletes it while the run goes on (:mod:`.trash`).
"""
from .reader import StoreReader, format_meta, open_store, to_xarray
from .schema import (
    DERIVATIVE_ARRAYS,
    ELEMENT_ARRAYS,
    FORMAT_NAME,
    FORMAT_VERSION,
    STATUS_COMPLETE,
    STATUS_CREATING,
    STATUS_INCOMPLETE,
    STRUCTURE_ARRAYS,
    StoreLayout,
    list_done_units,
)
from .writer import StoreWriter, create_store, finalize_store, mark_failed, to_json

__all__ = [
    "StoreLayout",
    "StoreWriter",
    "StoreReader",
    "create_store",
    "finalize_store",
    "mark_failed",
    "open_store",
    "to_xarray",
    "list_done_units",
    "format_meta",
    "to_json",
    "ELEMENT_ARRAYS",
    "DERIVATIVE_ARRAYS",
    "STRUCTURE_ARRAYS",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "STATUS_CREATING",
    "STATUS_INCOMPLETE",
    "STATUS_COMPLETE",
]
