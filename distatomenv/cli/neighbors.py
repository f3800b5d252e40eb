"""``distatomenv neighbors``: neighbour counts and g(r) before computing."""
from __future__ import annotations

from .common import add_parser, api_option, given
from .progress import progress_bar

API = "distatomenv.tools.survey:survey_neighbors"


def add(sub):
    nb = add_parser(sub, "neighbors", help="survey neighbour counts and g(r) before computing",
                    description="Count every atom's neighbour entries of each element "
                                "within the global maximum SF cutoff (as compute does), "
                                "print per element pair the minimum, mean and maximum and "
                                "the suggested --neighbors, and write neighbors.histo, "
                                "rdf.dat (g(r) per pair) and neighbors.png.")
    nb.add_argument("data", help="n2p2 input.data file")
    nb.add_argument("--settings", help="input.nn (default: input.nn beside DATA)")
    api_option(nb, "-o", "--output", metavar="DIR", source="distatomenv.tools.survey:DEFAULT_SURVEY_DIR",
               help="folder for the files (default: ./{default})")
    api_option(nb, "--bins", type=int, source=f"{API}.bins", help="bins of g(r) (default {default})")
    nb.add_argument("--rmax", type=float, help="largest r of g(r) (default: the cutoff)")
    nb.add_argument("--structures", type=int, metavar="N",
                    help="survey only the first N structures")
    nb.add_argument("--threads", type=int, help="numba threads (default: all cores)")
    nb.add_argument("-q", "--quiet", action="store_true",
                    help="print only the suggested --neighbors string")
    nb.set_defaults(func=run)


def run(args):
    from ..tools.survey import DEFAULT_SURVEY_DIR, survey_neighbors
    bar = progress_bar(args, "neighbors")
    try:
        survey = survey_neighbors(args.data, settings=args.settings, rmax=args.rmax,
                                  structures=args.structures, threads=args.threads,
                                  progress=bar.running_totals if bar else None,
                                  **given(args, "bins"))
    finally:
        if bar is not None:
            bar.close()
    paths = survey.write(getattr(args, "output", DEFAULT_SURVEY_DIR))
    if not args.quiet:
        print(survey.table())
        print("wrote " + ", ".join(str(p) for p in paths.values()))
    else:
        print(survey.suggested)
    return 0
