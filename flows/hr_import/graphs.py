"""Graph questions HR Import asks of parent and manager links, set-wise in polars.

Edges are frames with string columns `child` and `parent` (for management: report and
manager). The graphs are large (a million users) but shallow, so iterative joins that walk
one level per step finish in a dozen steps.
"""

from __future__ import annotations

import polars as pl

MAX_DEPTH = 100  # deeper than any real hierarchy; a guard against runaway walks


def nodes_on_cycles(edges: pl.DataFrame) -> set[str]:
    """Nodes that lie on a directed cycle (including a node that is its own parent)."""
    edges = edges.select("child", "parent").drop_nulls().unique()
    self_loops = set(edges.filter(pl.col("child") == pl.col("parent"))["child"].to_list())
    edges = edges.filter(pl.col("child") != pl.col("parent"))
    # Peel nodes that cannot be on a cycle: no outgoing or no incoming edge left.
    while edges.height:
        kept = edges.filter(
            pl.col("parent").is_in(edges["child"].implode())
            & pl.col("child").is_in(edges["parent"].implode())
        )
        if kept.height == edges.height:
            break
        edges = kept
    return self_loops | _strongly_connected_members(edges)


def _strongly_connected_members(edges: pl.DataFrame) -> set[str]:
    """Members of strongly connected components of size > 1 (iterative Tarjan)."""
    graph: dict[str, list[str]] = {}
    for child, parent in edges.iter_rows():
        graph.setdefault(child, []).append(parent)
        graph.setdefault(parent, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    members: set[str] = set()
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, edge_i = work.pop()
            if edge_i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            recursed = False
            for i in range(edge_i, len(graph[node])):
                nxt = graph[node][i]
                if nxt not in index:
                    work.append((node, i + 1))
                    work.append((nxt, 0))
                    recursed = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if recursed:
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    members.update(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return members


def descendants(
    edges: pl.DataFrame, roots: set[str], *, stop_at: set[str] = frozenset()
) -> set[str]:
    """Every node below `roots` (roots excluded), not walking through `stop_at` nodes."""
    found: set[str] = set()
    frontier = roots
    for _ in range(MAX_DEPTH):
        if not frontier:
            break
        children = (
            set(edges.filter(pl.col("parent").is_in(list(frontier)))["child"].to_list())
            - found
            - roots
            - set(stop_at)
        )
        found |= children
        frontier = children
    return found


def ancestors(edges: pl.DataFrame, nodes: set[str]) -> set[str]:
    """Every node above `nodes` (nodes excluded)."""
    parent_of = dict(edges.select("child", "parent").drop_nulls().iter_rows())
    found: set[str] = set()
    for node in nodes:
        current = parent_of.get(node)
        steps = 0
        while current is not None and current not in found and steps < MAX_DEPTH:
            found.add(current)
            current = parent_of.get(current)
            steps += 1
    return found - nodes
