"""One point of a hyper-parameter sweep: the Slurm array task id picks the point."""
import json
import os
import sys

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.model_selection import cross_val_score

ALPHAS = np.logspace(-3, 3, 100)


def main() -> None:
    task = int(os.environ.get("SLURM_ARRAY_TASK_ID", "0"))
    alpha = float(ALPHAS[task])
    rng = np.random.default_rng(task)
    x = rng.normal(size=(200, 10))
    y = x @ rng.normal(size=10) + rng.normal(scale=0.1, size=200)
    score = cross_val_score(Ridge(alpha=alpha), x, y, cv=5).mean()
    out = sys.argv[1] if len(sys.argv) > 1 else "results"
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"task_{task:03d}.json"), "w") as f:
        json.dump({"task": task, "alpha": alpha, "score": score}, f)
    print(f"task {task}: alpha={alpha:.4g} score={score:.4f}")


if __name__ == "__main__":
    main()
