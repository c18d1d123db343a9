"""ROS 2 nodes (thin: convert messages, call the core, publish).

Importing this package does not import rclpy; the node modules do.
"""
