"""The compute side of a run, in the order the data flows.

* :mod:`.job` -- prepare a run: inputs read, data indexed, provenance; the
  picklable :class:`~.job.Job`;
* :mod:`.plan` -- the work units and the rows each one owns;
* :mod:`.scaling` -- the scaling pass (n2p2's nnp-scaling);
* :mod:`.worker` -- :class:`~.worker.UnitRunner`: compute and write units;
* :mod:`.run` -- the public API: compute (on an executor), export, verify, info.

The package is called ``engine`` so that ``distatomenv.compute`` stays the
public function.  Executors (:mod:`distatomenv.executors`) import nothing from
here: the job and the worker factory are handed to them.
"""
