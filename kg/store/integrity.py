"""Checks every back end applies to what it is asked to write, so that the same bad input fails alike.

Neo4j stores only scalars and lists of one scalar type as properties; the embedded store could hold any JSON.
To keep "same data in, same data out" on both, both refuse what Neo4j cannot hold — before anything is
written — with one Chinese message naming the node or edge and the property.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kg.model import Edge, Node
from kg.store.base import StoreError

__all__ = ["check_edges", "check_nodes", "missing_ends_error"]

_SCALARS = (str, bool, int, float)


def _scalar_kind(value: Any) -> type | None:
    """bool before int: Python's bool is an int, but the two are different property types."""
    for kind in _SCALARS:
        if isinstance(value, kind):
            return kind
    return None


def _check_value(owner: str, key: str, value: Any) -> None:
    if _scalar_kind(value) is not None:
        return
    if isinstance(value, (list, tuple)):
        kinds = {_scalar_kind(v) for v in value}
        if None not in kinds and len(kinds) <= 1:
            return
        raise StoreError(f"{owner} 的属性『{key}』是混合类型或含空值的列表：列表元素应为同一种标量（文本、整数、小数或布尔）")
    if value is None:
        raise StoreError(f"{owner} 的属性『{key}』为空值（None）：没有值时请省略该属性")
    raise StoreError(f"{owner} 的属性『{key}』的值类型为 {type(value).__name__}：应为文本、整数、小数、布尔或它们的列表")


def _check_props(owner: str, props: Mapping[str, Any]) -> None:
    for key, value in props.items():
        _check_value(owner, key, value)


def check_nodes(nodes: Iterable[Node]) -> None:
    """Raise :class:`StoreError` for the first node whose id or properties no back end could store alike."""
    for node in nodes:
        if not isinstance(node.id, str) or not node.id:
            raise StoreError(f"节点编号应为非空文本，实为 {node.id!r}")
        if "id" in node.props:
            raise StoreError(f"节点 {node.id} 的属性中不能有『id』：id 是节点编号")
        _check_props(f"节点 {node.id}", node.props)


def check_edges(edges: Iterable[Edge]) -> None:
    """Raise :class:`StoreError` for the first edge whose properties no back end could store alike."""
    for edge in edges:
        _check_props(f"关系 {edge.src} -[{edge.type}]-> {edge.dst}", edge.props)


def missing_ends_error(missing: list[str]) -> StoreError:
    """The error for edges whose ends are neither written nor stored (ids sorted, at most ten named)."""
    shown = "、".join(missing[:10])
    return StoreError(f"关系的端点不存在：{shown}{' 等' if len(missing) > 10 else ''}")
