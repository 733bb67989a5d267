"""bench/hpo.sh's table: per test function, trainyard's samplers beside Optuna's, with a one-sided
Mann-Whitney U test over the seeds (the best value each run found; lower is better).

  hpo_ranktest.py RESULTS...   files of "FUNC ALGO SEED BEST" lines; Optuna's algos are "optuna-X"

For "X no worse than Optuna's X" the alternative is that ours is stochastically larger (worse):
p < 0.05 would say worse. For "GP better than random" the alternative is that the GP's values
are smaller: p < 0.05 says better. U with midranks for ties and the normal approximation with
tie and continuity corrections (fine from 8 seeds on each side). With 18 "no worse" tests at
0.05 about one false "worse" is expected by chance (random against random included), so the
verdict uses Holm's step-down adjustment over the family; the raw p is printed beside it.
"""
import math
import statistics
import sys
from collections import defaultdict


def mann_whitney_greater(a, b):
    """One-sided p-value for H1: values in a tend to be larger than those in b."""
    n1, n2 = len(a), len(b)
    pooled = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks = [0.0] * len(pooled)
    i = 0
    tie_term = 0.0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        mid = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[k] = mid
        t = j - i + 1
        tie_term += t ** 3 - t
        i = j + 1
    r1 = sum(r for r, (_, side) in zip(ranks, pooled) if side == 0)
    u1 = r1 - n1 * (n1 + 1) / 2
    mean = n1 * n2 / 2
    n = n1 + n2
    var = n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1)))
    if var <= 0:
        return 0.5, u1
    z = (u1 - mean - 0.5) / math.sqrt(var)
    return 0.5 * math.erfc(z / math.sqrt(2)), u1


def holm(ps):
    """Holm-adjusted p-values, in the order given."""
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    adj = [0.0] * len(ps)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - rank) * ps[i]))
        adj[i] = running
    return adj


def main(paths):
    res = defaultdict(lambda: defaultdict(list))
    for path in paths:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 4:
                    res[parts[0]][parts[1]].append(float(parts[3]))
    order = ["branin", "hartmann6", "rosenbrock4", "ackley5", "mixed", "mlsurrogate"]
    funcs = [f for f in order if f in res] + sorted(f for f in res if f not in order)
    rows = []
    for f in funcs:
        for algo in ["tpe", "cmaes", "random"]:
            ours, theirs = res[f].get(algo), res[f].get("optuna-" + algo)
            if ours and theirs:
                rows.append((f, algo, ours, theirs, mann_whitney_greater(ours, theirs)[0]))
    adjusted = holm([r[4] for r in rows])
    print(f"{'function':<12} {'sampler':<8} {'trainyard median':>17} {'optuna median':>14} "
          f"{'p(worse)':>9} {'Holm p':>7}  verdict")
    failures = 0
    for (f, algo, ours, theirs, p), padj in zip(rows, adjusted):
        ok = padj >= 0.05
        failures += not ok
        print(f"{f:<12} {algo:<8} {statistics.median(ours):>17.5g} "
              f"{statistics.median(theirs):>14.5g} {p:>9.3f} {padj:>7.3f}  "
              f"{'no worse' if ok else 'WORSE'}")
    print()
    print(f"{'function':<12} {'GP median':>10} {'random median':>14} {'p(not better)':>14}  verdict"
          f"   (+ other trainyard samplers' medians)")
    for f in funcs:
        gp, rnd = res[f].get("bayesianoptimization"), res[f].get("random")
        extra = "  ".join(f"{a}={statistics.median(v):.4g}" for a, v in sorted(res[f].items())
                          if a in ("multivariate-tpe", "sobol"))
        if not gp or not rnd:
            continue
        p, _ = mann_whitney_greater(rnd, gp)  # H1: random's values larger, i.e. GP better
        ok = p < 0.05
        failures += not ok
        print(f"{f:<12} {statistics.median(gp):>10.5g} {statistics.median(rnd):>14.5g} "
              f"{p:>14.3g}  {'better' if ok else 'NOT BETTER'}   {extra}")
    return failures


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    sys.exit(1 if main(sys.argv[1:]) else 0)
