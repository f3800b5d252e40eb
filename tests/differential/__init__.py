"""Differential tests against n2p2 itself (issue 13).

``generator`` draws random valid inputs from a seed; ``harness`` runs n2p2's
nnp-scaling and nnp-atomenv (the oracle, ../shared/tools/n2p2) and
distatomenv's scaling, compute and export on them and compares every file
with the rule of ../shared/reference/README.md; ``run`` is the command line of
the long run.  tests/test_differential.py runs the fixed CI subset and the
regression cases.
"""
