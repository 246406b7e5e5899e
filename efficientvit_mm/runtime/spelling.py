"""Names a user probably meant: edit distances for "did you mean"."""
from typing import Iterable, Optional


def edit_distance(a: str, b: str) -> int:
    """Edits (insert, delete, substitute, swap two neighbours) from ``a``
    to ``b``: 'trian_cfg' -> 'train_cfg' is 1."""
    prev2, prev = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
            if (prev2 is not None and i > 1 and j > 1 and ca == b[j - 2]
                    and a[i - 2] == cb):
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[-1]


def nearest(name: str, candidates: Iterable[str],
            max_distance: int = 2) -> Optional[str]:
    """The candidate closest to ``name`` within ``max_distance`` edits (and
    fewer edits than half its length), or None."""
    best, best_d = None, max_distance + 1
    for cand in sorted(set(candidates)):
        d = edit_distance(name, cand)
        if d < best_d and d < max(len(name), len(cand)) / 2:
            best, best_d = cand, d
    return best
