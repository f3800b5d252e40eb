"""``distatomenv demo``: MD liquid, coarse-graining, compute, analyze, verdict."""
from __future__ import annotations

from .common import add_parser, api_option, given
from .progress import progress_bar

API = "distatomenv.tools.demo:run_demo"


def add(sub):
    d = add_parser(sub, "demo", help="the whole story: MD liquid, coarse-graining, compute, "
                                     "analyze, verdict",
                   description="The embedded default: generate a water-like liquid by "
                               "molecular dynamics, coarse-grain it, compute and analyse "
                               "both descriptions, and compare how well each resolves "
                               "its forces.")
    api_option(d, "--directory", source=f"{API}.directory", help="where to write everything")
    api_option(d, "--structures", type=int, source=f"{API}.structures",
               help="configurations (default {default})")
    api_option(d, "--molecules", type=int, source=f"{API}.molecules",
               help="molecules each (default {default})")
    api_option(d, "--seed", type=int, source=f"{API}.seed")
    api_option(d, "--permutations", type=int, source=f"{API}.permutations",
               help="rounds of the permutation null (default {default})")
    d.add_argument("--threads", type=int)
    d.set_defaults(func=run)


def run(args):
    from ..tools.demo import run_demo
    res = run_demo(threads=args.threads, progress=progress_bar(args),
                   **given(args, "directory", "structures", "molecules", "seed", "permutations"))
    for kind, result in res.reports.items():
        print(f"\n{kind}:")
        print(result.summary())
    print(f"\ndemo: reports: {res.reports['atomistic'].out_dir}/report.html and "
          f"{res.reports['cg'].out_dir}/report.html")
    for line in res.verdict:
        print(f"demo: {line}")
    print(f"demo: done in {res.seconds:.1f} s")
    return 0
