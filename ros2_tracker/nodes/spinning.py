"""Spinning a node until shutdown, where a signal may stop it in the middle of a callback."""

from __future__ import annotations

from typing import Any

__all__ = ["spin_until_shutdown"]


def spin_until_shutdown(node: Any) -> None:
    """``rclpy.spin(node)``, treating an exception raised after shutdown as a clean stop.

    SIGINT/SIGTERM shut the context down while a callback ran: its next publish raises "context is
    invalid". That is a clean stop; an exception while the context is still valid is a real error
    and is re-raised.
    """
    import rclpy

    try:
        rclpy.spin(node)
    except Exception:
        if rclpy.ok():
            raise
