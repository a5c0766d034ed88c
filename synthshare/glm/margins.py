"""X^T w and X^T diag(w) X of a one-hot design, read off the margins of a cell table.

For the design X of :mod:`synthshare.glm.design` (one row per cell; an intercept
and one indicator per non-reference level) and cell weights w:

* (X^T w)[term of f = l]                 = Σ_{cells with x_f = l} w_c           (one-way margin)
* (X^T diag(w) X)[f = l, g = m], f ≠ g    = Σ_{cells with x_f = l, x_g = m} w_c  (two-way margin)
* (X^T diag(w) X)[f = l, f = m]           = δ_lm · one-way margin (levels are exclusive)
* the intercept row/column is the one-way margins, its diagonal the total.

So the P×P Gram matrix costs a few passes over the 2,240 cells instead of 2,240·P²
multiply-adds. The two-way margins come from a fixed plan of single-axis sums that
reuses intermediate tables (about 4.2 passes over the full table for five features).

Arrays here are batch-last: cell tables (L_1, ..., L_q, B), results (P, B) and (P, P, B),
so that every reduction streams contiguous rows of length B.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from synthshare.glm.design import Design


class MarginPlan:
    """A precomputed recipe for the one- and two-way margins and the Gram gather of a design."""

    def __init__(self, design: Design) -> None:
        self.design = design
        shape = design.shape
        q = len(shape)
        self._steps = _plan_pair_sums(shape)
        if q >= 3:
            self._left_steps = _plan_pair_sums(shape[:-2]) if q >= 4 else []
            right = shape[-2:]
            # [1 | one-hot of feature q−2 | one-hot of feature q−1] over the right cells
            rows = np.arange(right[0] * right[1])
            matrix = np.zeros((1 + right[0] + right[1], rows.size))
            matrix[0] = 1.0
            matrix[1 + rows // right[1], rows] = 1.0
            matrix[1 + right[0] + rows % right[1], rows] = 1.0
            self._right_matrix = matrix
        else:
            self._left_steps = []
        self._pairs = list(itertools.combinations(range(q), 2))
        # Flat layout of all margins: [total, one-way f..., two-way (f, g)..., zero].
        offsets: dict[tuple[int, ...], int] = {(): 0}
        position = 1
        for f in range(q):
            offsets[(f,)] = position
            position += shape[f]
        for f, g in self._pairs:
            offsets[(f, g)] = position
            position += shape[f] * shape[g]
        zero = position
        self._flat_size = position + 1
        self._offsets = offsets

        P = design.size
        levels = [(f, l, int(design.term_index[f][l])) for f in range(q) for l in range(shape[f]) if design.term_index[f][l] >= 0]
        # where each term's one-way margin sits in the flat layout; the intercept's is the total
        vector_index = np.zeros(P, dtype=np.intp)
        for f, l, t in levels:
            vector_index[t] = offsets[(f,)] + l
        gram_index = np.full((P, P), zero, dtype=np.intp)
        gram_index[0, :] = vector_index
        gram_index[:, 0] = vector_index
        for f, l, t in levels:
            for g, m, u in levels:
                if f == g:
                    if l == m:
                        gram_index[t, u] = offsets[(f,)] + l
                elif f < g:
                    gram_index[t, u] = gram_index[u, t] = offsets[(f, g)] + l * shape[g] + m
        self._scratch_tables: dict[tuple[int, ...], dict[tuple[int, ...], np.ndarray]] = {}
        self.vector_index = vector_index
        self.gram_index = gram_index.reshape(-1)

    def flat_margins(self, weights: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """All margins of a batch of cell tables (see :meth:`_split_margins` for the method).

        Args:
            weights: (L_1, ..., L_q, B) cell weights.
            out: optional (flat_size, B) C-contiguous array to write into.

        Returns:
            (flat_size, B): total, one-way and two-way margins, then a row of zeros.
        """
        shape = self.design.shape
        q = len(shape)
        batch = weights.shape[q:]
        if out is None:
            out = np.empty((self._flat_size,) + batch, dtype=np.float64)
        if q >= 3 and len(batch) == 1:
            return self._split_margins(weights, out)
        return self._summed_margins(weights, out)

    def _split_margins(self, weights: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Margins via one matrix product: the full table is read twice, not ~4 times.

        With the last two features on the "right" (R = L_{q−1}·L_q cells) and the others
        on the "left", the table is a stack of (R, B) slices. One product with the
        (R × (1 + L_{q−1} + L_q)) matrix [1 | one-hot of feature q−1 | one-hot of q]
        gives, per left cell, the sum over the right cells and the sums per level of
        each right feature; one sum over the left cells gives the right pair margin.
        Every other margin is a reduction of these small tables.
        """
        shape = self.design.shape
        q = len(shape)
        width = weights.shape[-1]
        left = shape[:-2]
        right = shape[-2:]
        products = np.matmul(self._right_matrix, weights.reshape(-1, right[0] * right[1], width))
        scratch = self._scratch((width,))
        # the right pair (q−2, q−1): sum over all left cells
        start = self._offsets[(q - 2, q - 1)]
        np.sum(weights.reshape(-1, right[0] * right[1] * width), axis=0, out=out[start : start + right[0] * right[1]].reshape(-1))
        # left margins: the plan of single-axis sums on the left table (pairs land in out)
        left_table = products[:, 0].reshape(left + (width,))
        tables: dict[tuple[int, ...], np.ndarray] = {tuple(range(q - 2)): left_table}
        if q - 2 == 2:  # the left table is itself the pair (0, 1)
            start = self._offsets[(0, 1)]
            out[start : start + shape[0] * shape[1]] = left_table.reshape(-1, width)
        for source, axis in self._left_steps:
            kept = tuple(a for a in source if a != axis)
            if len(kept) == 2:
                start = self._offsets[kept]
                dest = out[start : start + shape[kept[0]] * shape[kept[1]]].reshape((shape[kept[0]], shape[kept[1]], width))
            else:
                dest = scratch[("left",) + kept]
            np.sum(tables[source], axis=source.index(axis), out=dest)
            tables[kept] = dest
        # cross pairs (left f, right g): the per-level columns summed over the other left features
        column = 1
        for g in (q - 2, q - 1):
            block = products[:, column : column + shape[g]].reshape(left + (shape[g], width))
            column += shape[g]
            for f in range(q - 2):
                others = tuple(a for a in range(q - 2) if a != f)
                start = self._offsets[(f, g)]
                dest = out[start : start + shape[f] * shape[g]].reshape((shape[f], shape[g], width))
                np.sum(block, axis=others, out=dest)
        self._one_ways_and_total(out, (width,))
        return out

    def _summed_margins(self, weights: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Margins by the plan of single-axis sums over the full table (few features, any batch)."""
        shape = self.design.shape
        q = len(shape)
        batch = weights.shape[q:]
        scratch = self._scratch(batch)
        tables: dict[tuple[int, ...], np.ndarray] = {tuple(range(q)): weights}
        if q == 1:
            out[1 : 1 + shape[0]] = weights
            out[0] = weights.sum(axis=0)
            out[-1] = 0.0
            return out
        if q == 2:  # the table is itself the pair (0, 1)
            start = self._offsets[(0, 1)]
            out[start : start + shape[0] * shape[1]] = weights.reshape((-1,) + batch)
        for source, axis in self._steps:
            kept = tuple(a for a in source if a != axis)
            if len(kept) == 2:
                start = self._offsets[kept]
                dest = out[start : start + shape[kept[0]] * shape[kept[1]]].reshape(
                    (shape[kept[0]], shape[kept[1]]) + batch)
            else:
                dest = scratch[kept]
            np.sum(tables[source], axis=source.index(axis), out=dest)
            tables[kept] = dest
        self._one_ways_and_total(out, batch)
        return out

    def _one_ways_and_total(self, out: np.ndarray, batch: tuple[int, ...]) -> None:
        shape = self.design.shape
        q = len(shape)
        for f in range(q):
            g = 1 if f == 0 else 0
            start = self._offsets[(f,)]
            pair_start = self._offsets[(min(f, g), max(f, g))]
            pair = out[pair_start : pair_start + shape[f] * shape[g]].reshape((shape[min(f, g)], shape[max(f, g)]) + batch)
            np.sum(pair, axis=1 if f < g else 0, out=out[start : start + shape[f]])
        first = self._offsets[(0,)]
        np.sum(out[first : first + shape[0]], axis=0, out=out[0])
        out[-1] = 0.0

    def _scratch(self, batch: tuple[int, ...]) -> dict[tuple[int, ...], np.ndarray]:
        """Intermediate tables for one batch width, kept between calls (no re-allocation)."""
        tables = self._scratch_tables.get(batch)
        if tables is None:
            shape = self.design.shape
            tables = {
                kept: np.empty(tuple(shape[a] for a in kept) + batch)
                for kept in {tuple(a for a in source if a != axis) for source, axis in self._steps}
                if len(kept) != 2
            }
            tables.update({
                ("left",) + kept: np.empty(tuple(shape[a] for a in kept) + batch)
                for kept in {tuple(a for a in source if a != axis) for source, axis in self._left_steps}
                if len(kept) != 2
            })
            if len(self._scratch_tables) >= 4:  # a few widths are in use at a time
                self._scratch_tables.pop(next(iter(self._scratch_tables)))
            self._scratch_tables[batch] = tables
        return tables

    @property
    def flat_size(self) -> int:
        """Rows of :meth:`flat_margins`' result."""
        return self._flat_size

    def cell_entries(self) -> np.ndarray:
        """(cells, 1 + q + q(q−1)/2) the flat-margin rows each cell (C order) adds to."""
        shape = self.design.shape
        grids = [g.reshape(-1) for g in np.meshgrid(*[np.arange(L) for L in shape], indexing="ij")]
        columns = [np.zeros_like(grids[0])]
        columns += [self._offsets[(f,)] + grids[f] for f in range(len(shape))]
        columns += [self._offsets[(f, g)] + grids[f] * shape[g] + grids[g] for f, g in self._pairs]
        return np.stack(columns, axis=1)

    def one_way_index(self, feature: int) -> np.ndarray:
        """(L_f,) rows of the flat layout holding the ``feature``-th feature's one-way margin."""
        start = self._offsets[(feature,)]
        return np.arange(start, start + self.design.shape[feature])

    def one_way(self, flat: np.ndarray, feature: int) -> np.ndarray:
        """(L_f, B) one-way margin of the ``feature``-th modelled feature (reference level included)."""
        start = self._offsets[(feature,)]
        return flat[start : start + self.design.shape[feature]]

    def vector(self, flat: np.ndarray) -> np.ndarray:
        """(P, B) X^T w from :meth:`flat_margins`."""
        return flat[self.vector_index]

    def gram(self, flat: np.ndarray) -> np.ndarray:
        """(P, P, B) X^T diag(w) X from :meth:`flat_margins`."""
        P = self.design.size
        return flat[self.gram_index].reshape((P, P) + flat.shape[1:])


def _plan_pair_sums(shape: tuple[int, ...]) -> list[tuple[tuple[int, ...], int]]:
    """Single-axis sums (source axes, axis summed out) that produce every two-way margin.

    Greedy: serve the pair whose cheapest already-computed superset is smallest; reduce
    that superset one axis at a time, keeping the intermediate that still contains the
    most pending pairs (ties: the smaller table). With one feature there are no pairs.
    """
    q = len(shape)

    def size(axes: frozenset[int]) -> int:
        return math.prod(shape[a] for a in axes)

    pending = [frozenset(p) for p in itertools.combinations(range(q), 2)]
    available = {frozenset(range(q))}
    steps: list[tuple[tuple[int, ...], int]] = []
    while pending:
        target, source = min(
            ((t, min((s for s in available if t <= s), key=lambda s: (size(s), sorted(s)))) for t in pending),
            key=lambda ts: (size(ts[1]), sorted(ts[0])),
        )
        while source != target:
            def score(axis: int) -> tuple[int, int, int]:
                rest = source - {axis}
                return (-sum(1 for t in pending if t <= rest), size(rest), axis)

            axis = min(source - target, key=score)
            steps.append((tuple(sorted(source)), axis))
            source = source - {axis}
            available.add(source)
        pending.remove(target)
    return steps


class FactorMargins:
    """All margins of n ⊙ μ when μ factorises over the features, by small matrix products.

    Batch-first. With the last two features on the "right" (R = L_{q−1}·L_q cells) and
    the others on the "left" (Λ cells), a fit's records form an (Λ × R) matrix N and its
    means μ = a ⊗ b (a over left cells, b over right cells; the intercept's exp(β₀)
    folded into a). Then, with the fixed 0/1 matrices E = [1 | one-hot(q−1) | one-hot(q)]
    (R × (1 + L_{q−1} + L_q)) and F = one-hot of every left feature (Λ × Σ_left L_f):

        T = diag(a) N diag(b) E            (Λ × (1 + L_{q−1} + L_q)): per left cell, the
                                             total and the per-level sums of the right features
        Fᵀ T                               one-way margins of left features and the
                                             left × right pairs
        T[:, 0] and its left-pair sums      left × left pairs
        (aᵀ N) ⊙ b                          the right pair (q−1, q)

    The cell table is read twice (two batched matrix products), μ and n ⊙ μ are never
    formed over the cells, and no exponential is taken per cell. Requires q ≥ 3.
    """

    def __init__(self, plan: MarginPlan) -> None:
        design = plan.design
        shape = design.shape
        q = len(shape)
        if q < 3:
            raise ValueError("FactorMargins needs at least 3 features")
        self.plan = plan
        self.left_shape = shape[:-2]
        self.left = math.prod(self.left_shape)
        d, u = shape[-2:]
        self.right_shape = (d, u)
        self.right = d * u
        rows = np.arange(self.right)
        # E: right cell -> [1, its level of feature q−1, its level of feature q]
        self.E = np.zeros((self.right, 1 + d + u))
        self.E[:, 0] = 1.0
        self.E[rows, 1 + rows // u] = 1.0
        self.E[rows, 1 + d + rows % u] = 1.0
        # F: left cell -> one-hot of each left feature's level
        grids = [g.reshape(-1) for g in np.meshgrid(*[np.arange(L) for L in self.left_shape], indexing="ij")]
        left_offsets = np.cumsum((0,) + self.left_shape[:-1])
        self.FT = np.zeros((sum(self.left_shape), self.left))
        for f, grid in enumerate(grids):
            self.FT[left_offsets[f] + grid, np.arange(self.left)] = 1.0
        # left x left pairs: left cell -> its (l, m) cell of each pair
        left_pairs = list(itertools.combinations(range(q - 2), 2))
        pair_sizes = [self.left_shape[f] * self.left_shape[g] for f, g in left_pairs]
        pair_offsets = np.cumsum([0] + pair_sizes[:-1]) if pair_sizes else []
        self.G = np.zeros((self.left, sum(pair_sizes)))
        for (f, g), offset in zip(left_pairs, pair_offsets):
            self.G[np.arange(self.left), offset + grids[f] * self.left_shape[g] + grids[g]] = 1.0
        # right pair -> one-way margins of the two right features
        self.H = np.zeros((self.right, d + u))
        self.H[rows, rows // u] = 1.0
        self.H[rows, d + rows % u] = 1.0

        # gather map from the source vector [total | Fᵀ T | left pairs | right pair | right one-ways | 0]
        width_t = 1 + d + u
        src_ft = 1
        src_lp = src_ft + sum(self.left_shape) * width_t
        src_rp = src_lp + sum(pair_sizes)
        src_ro = src_rp + self.right
        src_zero = src_ro + d + u
        self.source_size = src_zero + 1
        offsets = plan._offsets
        index = np.full(plan.flat_size, src_zero, dtype=np.intp)
        index[0] = 0
        for f in range(q - 2):
            for l in range(shape[f]):
                row = src_ft + (left_offsets[f] + l) * width_t
                index[offsets[(f,)] + l] = row
                for m in range(d):
                    index[offsets[(f, q - 2)] + l * d + m] = row + 1 + m
                for m in range(u):
                    index[offsets[(f, q - 1)] + l * u + m] = row + 1 + d + m
        for (f, g), offset in zip(left_pairs, pair_offsets):
            size = self.left_shape[f] * self.left_shape[g]
            index[offsets[(f, g)] : offsets[(f, g)] + size] = src_lp + offset + np.arange(size)
        index[offsets[(q - 2, q - 1)] : offsets[(q - 2, q - 1)] + self.right] = src_rp + np.arange(self.right)
        index[offsets[(q - 2,)] : offsets[(q - 2,)] + d] = src_ro + np.arange(d)
        index[offsets[(q - 1,)] : offsets[(q - 1,)] + u] = src_ro + d + np.arange(u)
        self.index = index

    def margins(self, n: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Flat margins (``MarginPlan`` layout, batch-first) of n ⊙ (left ⊗ right).

        Args:
            n: (B, Λ, R) cell weights before the factors (e.g. records per cell).
            left: (B, Λ) factor per left cell (the intercept factor included), or None for 1.
            right: (B, R) factor per right cell, or None for 1.

        Returns:
            (B, flat_size).
        """
        B = n.shape[0]
        E = self.E if right is None else right[:, :, None] * self.E  # (B, R, 1+d+u)
        T = np.matmul(n, E)  # (B, Λ, 1+d+u)
        if left is not None:
            T *= left[:, :, None]
        FT = np.matmul(self.FT, T)  # (B, Σ L_left, 1+d+u)
        left_pairs = np.ascontiguousarray(T[:, :, 0]) @ self.G  # (B, Σ pairs); contiguous for BLAS
        if left is None:
            right_pair = n.sum(axis=1)
        else:
            right_pair = np.matmul(left[:, None, :], n)[:, 0]  # (B, R)
        if right is not None:
            right_pair *= right
        right_one = right_pair @ self.H
        source = np.empty((B, self.source_size))
        d = self.right_shape[0]
        source[:, 0] = right_one[:, :d].sum(axis=1)
        stop = 1 + FT.shape[1] * FT.shape[2]
        source[:, 1:stop] = FT.reshape(B, -1)
        source[:, stop : stop + left_pairs.shape[1]] = left_pairs
        stop += left_pairs.shape[1]
        source[:, stop : stop + self.right] = right_pair
        stop += self.right
        source[:, stop : stop + right_one.shape[1]] = right_one
        source[:, -1] = 0.0
        return source[:, self.index]
