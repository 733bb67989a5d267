"""bench/hpo.sh's baseline: Optuna's samplers on the functions of bench/lib/hpo_bench.c.

  hpo_optuna.py quality SAMPLER FUNC|all SEEDS TRIALS [FIRST]   one line per seed (from FIRST):
                                                       "FUNC SAMPLER SEED BEST"
  hpo_optuna.py cost DIMS TRIALS REPS                   ms (CPU) for TPE's suggestion of trial TRIALS

SAMPLER is tpe, cmaes or random (TPESampler, CmaEsSampler, RandomSampler with their defaults and
seed=SEED). The functions must stay those of hpo_bench.c.
"""
import math
import sys
import time

import optuna

optuna.logging.set_verbosity(optuna.logging.ERROR)


def branin(x0, x1):
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    u = x1 - b * x0 * x0 + c * x0 - 6
    return u * u + 10 * (1 - t) * math.cos(x0) + 10


ALPHA = [1.0, 1.2, 3.0, 3.2]
A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8],
     [17, 8, 0.05, 10, 0.1, 14]]
P = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
     [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]


def hartmann6(x):
    return -sum(ALPHA[i] * math.exp(-sum(A[i][j] * (x[j] - P[i][j] * 1e-4) ** 2 for j in range(6)))
                for i in range(4))


def rosenbrock4(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(3))


def ackley5(x):
    x = [v - 1.3 for v in x]  # the optimum off the centre, as in hpo_bench.c
    s1 = sum(v * v for v in x)
    s2 = sum(math.cos(2 * math.pi * v) for v in x)
    return -20 * math.exp(-0.2 * math.sqrt(s1 / 5)) - math.exp(s2 / 5) + 20 + math.e


def mixed(k, x, y):
    depth, cx, cy = [1.0, 0.0, 0.5], [-2, 1, 3], [0, 2, -1]
    return depth[k] + (x - cx[k]) ** 2 / 4 + (y - cy[k]) ** 2 / 4


def mlsurrogate(lr, width, dropout):
    l, w, d = math.log10(lr) + 2.5, math.log2(width / 96.0), dropout - 0.2
    return l * l + 0.5 * w * w + 4 * d * d + 0.3 * l * w


def objective(name):
    if name == "branin":
        return lambda t: branin(t.suggest_float("x0", -5, 10), t.suggest_float("x1", 0, 15))
    if name == "hartmann6":
        return lambda t: hartmann6([t.suggest_float(f"x{i}", 0, 1) for i in range(6)])
    if name == "rosenbrock4":
        return lambda t: rosenbrock4([t.suggest_float(f"x{i}", -2, 2) for i in range(4)])
    if name == "ackley5":
        return lambda t: ackley5([t.suggest_float(f"x{i}", -5, 5) for i in range(5)])
    if name == "mixed":
        return lambda t: mixed(["a", "b", "c"].index(t.suggest_categorical("c", ["a", "b", "c"])),
                               t.suggest_float("x", -5, 5), t.suggest_float("y", -5, 5))
    if name == "mlsurrogate":
        return lambda t: mlsurrogate(t.suggest_float("lr", 1e-5, 1, log=True),
                                     t.suggest_int("width", 16, 512, step=16),
                                     t.suggest_float("dropout", 0, 0.8))
    raise SystemExit(f"unknown function {name}")


FUNCS = ["branin", "hartmann6", "rosenbrock4", "ackley5", "mixed", "mlsurrogate"]


def sampler(name, seed):
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise SystemExit(f"unknown sampler {name}")


def quality(sname, fname, seeds, trials, first=0):
    for f in FUNCS if fname == "all" else [fname]:
        t0 = time.process_time()  # CPU time, as hpo_bench.c: the machine is shared
        for seed in range(first, first + seeds):
            study = optuna.create_study(sampler=sampler(sname, seed))
            study.optimize(objective(f), n_trials=trials)
            print(f"{f} {sname} {seed} {study.best_value:.10g}", flush=True)
        print(f"{f} optuna-{sname}: {(time.process_time() - t0) / seeds * 1e3:.1f} ms per run",
              file=sys.stderr)


def cost(dims, trials, reps):
    """TPE's suggestion for trial TRIALS after TRIALS-1 finished ones (the history built with
    add_trials so that building it does not take the bench's time)."""
    dist = {f"x{i}": optuna.distributions.FloatDistribution(0, 1) for i in range(dims)}
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1))
    rng = __import__("random").Random(1)
    hist = []
    for _ in range(trials - 1):
        params = {k: rng.random() for k in dist}
        hist.append(optuna.trial.create_trial(
            params=params, distributions=dist,
            value=sum((v - 0.3) ** 2 for v in params.values())))
    study.add_trials(hist)
    times = []
    for _ in range(reps):
        t0 = time.process_time()
        t = study.ask()
        for k in dist:
            t.suggest_float(k, 0, 1)
        times.append((time.process_time() - t0) * 1e3)
        study.tell(t, state=optuna.trial.TrialState.FAIL)
    times.sort()
    print(f"cost optuna-tpe dims={dims} trial={trials} suggestion_ms={times[len(times) // 2]:.4f}")


if __name__ == "__main__":
    if len(sys.argv) in (6, 7) and sys.argv[1] == "quality":
        quality(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]),
                int(sys.argv[6]) if len(sys.argv) == 7 else 0)
    elif len(sys.argv) == 5 and sys.argv[1] == "cost":
        cost(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    else:
        raise SystemExit(__doc__)
