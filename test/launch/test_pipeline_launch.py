"""launch_testing test of launch/pipeline.launch.py on a real ROS 2 install.

``launch`` / ``launch_testing`` come with ROS 2 (apt or a colcon workspace) and are not on PyPI, so this
module is skipped in the pip set-up; there, test/test_launch_files.py checks the launch files statically
and test/cli/test_launch_cli.py runs their nodes through ``ros2-tracker launch``. On a ROS 2 machine:

    launch_test test/launch/test_pipeline_launch.py        # or: python -m pytest test/launch

It replays a small synthetic sequence (detections only) through the pipeline with recording on,
checks that tracks come out while it runs, and after the launch shut itself down at the end of the
replay, that every process exited cleanly and the bag was closed with tracks in it.
"""

from __future__ import annotations

import tempfile
import time
import unittest
from pathlib import Path

import pytest

pytest.importorskip("launch_testing",
                    reason="launch_testing comes with a ROS 2 install (apt/colcon), not from PyPI")

import launch_testing.actions
import launch_testing.asserts
import rclpy
from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource

PIPELINE = Path(__file__).resolve().parents[2] / "launch" / "pipeline.launch.py"
FRAMES = 40  # at the synthetic scene's 10 Hz and rate 1.0: 4 s of replay


@pytest.mark.launch_test
def generate_test_description():
    """The pipeline on a fresh synthetic sequence, recording into a new bag."""
    from ros2_tracker.synthetic import SceneConfig, generate_scene

    work = Path(tempfile.mkdtemp(prefix="ros2_tracker_launch_test_"))
    source = generate_scene(SceneConfig(num_frames=FRAMES)).write_mot(work / "seq", render=False)
    bag = work / "bag"
    pipeline = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(PIPELINE)),
        launch_arguments={"source": str(source), "rate": "1.0", "record": "true", "bag": str(bag)}.items())
    return LaunchDescription([pipeline, launch_testing.actions.ReadyToTest()]), {"bag": bag}


class TestTracksComeOut(unittest.TestCase):
    """While the replay runs."""

    def test_tracks_are_published(self):
        from ros2_tracker.msg import TrackArray

        context = rclpy.Context()
        rclpy.init(context=context)
        try:
            node = rclpy.create_node("pipeline_launch_test", context=context)
            received = []
            node.create_subscription(TrackArray, "tracks", received.append, 100)
            executor = rclpy.executors.SingleThreadedExecutor(context=context)
            executor.add_node(node)
            end = time.monotonic() + 20.0
            while not received and time.monotonic() < end:
                executor.spin_once(timeout_sec=0.1)
            self.assertTrue(received, "no TrackArray on /tracks within 20 s")
            self.assertEqual(received[0].header.frame_id, "camera")
        finally:
            rclpy.shutdown(context=context)


@launch_testing.post_shutdown_test()
class TestCleanShutdown(unittest.TestCase):
    """After the launch shut down at the end of the replay."""

    def test_every_process_exited_cleanly(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)

    def test_the_bag_was_closed_with_tracks(self, bag):
        from ros2_tracker.io.bag import read_bag

        self.assertTrue((bag / "metadata.yaml").is_file(), "the recorder did not close its bag")
        tracks = sum(1 for _ in read_bag(bag, ["/tracks"]))
        self.assertGreaterEqual(tracks, FRAMES // 2)
