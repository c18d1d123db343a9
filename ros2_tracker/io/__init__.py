"""Files in and out: MOTChallenge text files and sequence folders, rosbag2 MCAP bags, videos, camera
calibrations, parameter YAML, and atomic writes."""
