"""Benchmark harness: ros2_tracker against peer trackers (accuracy, speed, scaling, memory). Not installed."""
