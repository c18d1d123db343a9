"""What tracker_node does with its inputs before the core tracker sees them, as pure logic (no ROS, so it is
tested without a graph): pairing detection messages with images of the same stamp, the order of the stamps
(late messages, a looped or restarted source), and when a stream's detection scores deserve a warning.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from typing import Any

import numpy as np

from ros2_tracker.core.tracker import TrackerConfig, score_scale_warning

__all__ = ["ScoreRangeWatch", "StampOrder", "StampPairer"]


class StampPairer:
    """Pairs detection messages with images of exactly the same stamp (pure logic, no ROS).

    Detection messages are released in stamp order, each with its image or with None when the image is
    given up on: a newer image arrived, more than ``max_pending`` messages wait, or it waited
    ``max_wait_s``. At most ``image_queue_size`` unpaired images are kept (oldest dropped). A message or
    an image stamped at most ``tolerance_ns`` before the newest one of its kind is late (a reordering
    transport) and takes its place in stamp order; a step further back (a looped bag) drops what was
    waiting for the old timeline: the stored images, and the pending messages' chance of an image.

    Args:
        image_queue_size: images kept while waiting for their detections.
        max_pending: detection messages kept waiting for their images (0: never wait).
        max_wait_s: longest wait of a detection message [s].
        tolerance_ns: how late a message or image may be and still be sorted in [ns] (the node's
            ``late_tolerance_s``; an attribute, changeable between calls).
    """

    def __init__(self, image_queue_size: int, max_pending: int, max_wait_s: float,
                 tolerance_ns: int = 0) -> None:
        self._images: OrderedDict[int, Any] = OrderedDict()
        self._pending: deque[tuple[int, Any, float]] = deque()
        self._newest_image: int | None = None
        self._newest_detection: int | None = None
        self._queue_size, self._max_pending, self._max_wait = image_queue_size, max_pending, max_wait_s
        self.tolerance_ns = tolerance_ns

    def __len__(self) -> int:
        return len(self._pending)

    def add_image(self, stamp_ns: int, image: Any, now: float) -> list[tuple[Any, Any]]:
        """Store an image; returns the (detections, image or None) pairs now ready, in order."""
        newest = self._newest_image
        if newest is not None and stamp_ns < newest - self.tolerance_ns:
            self._images.clear()  # stamps went back (looped bag): the stored images are stale
            newest = None
        self._images[stamp_ns] = image
        if newest is not None and stamp_ns < newest:  # late: into stamp order (a few dozen entries)
            self._images = OrderedDict(sorted(self._images.items()))
        self._newest_image = stamp_ns if newest is None else max(newest, stamp_ns)
        while len(self._images) > self._queue_size:
            self._images.popitem(last=False)
        return self.release(now)

    def add_detections(self, stamp_ns: int, detections: Any, now: float) -> list[tuple[Any, Any]]:
        """Queue a detection message; returns the pairs now ready, in order."""
        out = []
        entry = (stamp_ns, detections, now)
        newest = self._newest_detection
        went_back = newest is not None and newest - stamp_ns > self.tolerance_ns
        if went_back:  # stamps went back (looped bag): flush the old loop, start a new one
            out = [(d, self._images.pop(s, None)) for s, d, _ in self._pending]
            self._pending.clear()
            self._pending.append(entry)
            if self._newest_image is not None and self._newest_image - stamp_ns > self.tolerance_ns:
                # no image of the new loop yet (add_image would have started over): what is stored is the
                # old loop's, and its newest stamp must not give up this detection's image in advance
                self._images.clear()
                self._newest_image = None
        elif self._pending and stamp_ns < self._pending[-1][0]:  # late: into stamp order
            at = next(i for i, (s, _, _) in enumerate(self._pending) if s > stamp_ns)
            self._pending.insert(at, entry)
        else:
            self._pending.append(entry)
        self._newest_detection = stamp_ns if newest is None or went_back else max(newest, stamp_ns)
        return out + self.release(now)

    def release(self, now: float) -> list[tuple[Any, Any]]:
        """Pairs ready at time ``now`` [s] (also call it periodically to apply ``max_wait_s``)."""
        out = []
        while self._pending:
            stamp, det, arrived = self._pending[0]
            image = self._images.pop(stamp, None)
            if image is None and not self._give_up(stamp, arrived, now):
                break
            self._pending.popleft()
            while self._images and next(iter(self._images)) < stamp:
                self._images.popitem(last=False)  # older images: their detections are gone
            out.append((det, image))
        return out

    def _give_up(self, stamp: int, arrived: float, now: float) -> bool:
        return (len(self._pending) > self._max_pending or now - arrived >= self._max_wait
                or (self._newest_image is not None and self._newest_image > stamp))


class StampOrder:
    """What a message's stamp means for a tracker that only moves forward in time (pure logic, no ROS).

    A stamp at or after the last accepted one is in order. One earlier by at most ``tolerance_ns`` is a
    late message (a transport that reorders, a detector with several workers): the tracks cannot go back
    in time, so the message is dropped and the tracks are kept. An earlier stamp beyond the tolerance (a
    looped bag, a restarted source), or ``late_in_a_row`` late messages in a row (a short bag looping),
    starts a new timeline: the caller resets its tracker, and the stamp is accepted. So does a stamp more
    than ``jump_ns`` after the last one (publishers on different clocks, one on simulated time; a source
    paused for longer than any track could coast).

    Args:
        tolerance_ns: how late a message may be and still be dropped rather than reset the tracker [ns]
            (the node's ``late_tolerance_s``; an attribute, changeable between calls, as
            :class:`StampPairer`'s).
        late_in_a_row: late messages in a row that count as a new timeline.
        jump_ns: a step forward longer than this is a new timeline too [ns] (None: never; an attribute).

    Attributes:
        late: late messages so far.
    """

    IN_ORDER, LATE, NEW_TIMELINE = "in order", "late", "new timeline"

    def __init__(self, tolerance_ns: int = 0, late_in_a_row: int = 3, jump_ns: int | None = None) -> None:
        self._last: int | None = None
        self._late_in_a_row, self._run = late_in_a_row, 0
        self.tolerance_ns = tolerance_ns
        self.jump_ns = jump_ns
        self.late = 0

    def check(self, stamp_ns: int) -> str:
        """Classify ``stamp_ns`` (IN_ORDER, LATE or NEW_TIMELINE); every verdict but LATE accepts it."""
        last = self._last
        if last is not None and stamp_ns < last:
            self._run += 1
            if last - stamp_ns <= self.tolerance_ns and self._run < self._late_in_a_row:
                self.late += 1
                return self.LATE
            verdict = self.NEW_TIMELINE
        elif last is not None and self.jump_ns is not None and stamp_ns - last > self.jump_ns:
            verdict = self.NEW_TIMELINE
        else:
            verdict = self.IN_ORDER
        self._last, self._run = stamp_ns, 0
        return verdict

    def step_s(self, stamp_ns: int) -> float:
        """``stamp_ns`` minus the last accepted stamp [s] (negative: before it; 0 before any)."""
        return (stamp_ns - self._last) * 1e-9 if self._last is not None else 0.0


class ScoreRangeWatch:
    """When a stream of detection messages gets a score warning (``core.tracker.score_scale_warning``),
    pure logic.

    Scores above 1 with thresholds that assume [0, 1] are a message's own verdict. Scores that cannot
    start a track (below ``TrackerConfig.start_score``) are normal in one message, say one weak false
    positive in an empty scene, but not in every message a detector has sent: the warning comes once
    ``patience`` non-empty messages have come without any score that could start a track (a detector that
    fills no score, left at 0, or writes -1), and stops with the first one that could. The highest score
    so far is kept, so a change of thresholds is judged against it at once.
    """

    def __init__(self, patience: int = 30) -> None:
        self.patience = patience
        self._top = -math.inf
        self._messages = 0

    def check(self, scores: np.ndarray, config: TrackerConfig) -> str | None:
        """The warning for this message's ``scores`` (finite), or None."""
        if not len(scores):
            return None
        top = float(scores.max())
        self._top = max(self._top, top)
        self._messages += 1
        if self._top < config.start_score:  # no message so far could start a track
            return score_scale_warning(self._top, config) if self._messages >= self.patience else None
        return score_scale_warning(top, config) if top >= config.start_score else None
