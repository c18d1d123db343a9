"""replay_node's MOT-folder reader (``_FrameReplay``) and its parameters: every stamp it would publish fits
a ROS stamp (``builtin_interfaces/Time.sec`` is an int32), and a frame rate that would overflow the stamps is
refused at start-up. No ROS graph: the reader takes the config and a logger."""

from __future__ import annotations

import pytest

from ros2_tracker.core.config import ConfigError
from ros2_tracker.io.video import FrameSourceError
from ros2_tracker.nodes.replay_node import MAX_STAMP_S, ReplayConfig, _FrameReplay


class Log:
    def __init__(self):
        self.lines: list[str] = []

    def warning(self, text):
        self.lines.append(text)

    info = error = warning


@pytest.fixture
def sequence(tmp_path):
    """A MOT folder of 71 frames at 25 Hz with detections and no images."""
    seq = tmp_path / "seq"
    (seq / "det").mkdir(parents=True)
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=seq\nimDir=img1\nframeRate=25\nseqLength=71\n"
                                     "imWidth=640\nimHeight=480\nimExt=.jpg\n")
    (seq / "det" / "det.txt").write_text("".join(f"{f},-1,10,10,20,40,0.9\n" for f in range(1, 72)))
    return seq


def test_stamps_up_to_the_latest_ros_stamp_and_no_further(sequence):
    start = MAX_STAMP_S - 70 / 25  # frame 71 lands exactly on the latest stamp
    replay = _FrameReplay(ReplayConfig(source=str(sequence), start_stamp=start), Log())
    assert replay.stamp_ns(71) == MAX_STAMP_S * 1_000_000_000
    with pytest.raises(FrameSourceError, match=r"frame 71 would be stamped 2147483648 s, beyond the latest "
                                               r"ROS stamp \(2147483647 s\): lower start_stamp"):
        _FrameReplay(ReplayConfig(source=str(sequence), start_stamp=start + 1.0), Log())
    with pytest.raises(ConfigError, match="start_stamp"):  # the range: the seconds wrapped round to negative
        ReplayConfig(source=str(sequence), start_stamp=4.0e9)


@pytest.mark.parametrize("fps", [1e-300, 1e-9, float("nan")])
def test_a_frame_rate_that_overflows_the_stamps_is_refused(sequence, fps):
    """fps 1e-300 raised OverflowError on the first frame (exit 1, a traceback); 1e-9 published stamps 1e9 s
    apart. 0 still means the source's own rate."""
    with pytest.raises(ConfigError, match="fps"):
        ReplayConfig(source=str(sequence), fps=fps)
    assert _FrameReplay(ReplayConfig(source=str(sequence), fps=0.0), Log()).fps == 25.0
