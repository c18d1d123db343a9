"""Launch tracker_node alone: detections (and optionally images) in, tracks out.

    ros2 launch ros2_tracker tracker.launch.py [params_file:=F] [namespace:=NS]
        [detections_topic:=detections] [image_topic:=image] [depth_topic:=depth]
        [camera_info_topic:=camera_info] [imu_topic:=imu] [use_sim_time:=false]

Topics (relative to ``namespace``): subscribes ``detections`` (ros2_tracker/Detection2DArray) and, when
the parameter file sets ``use_images: true``, ``image``; with ``use_depth: true`` ``depth`` (a depth image
registered to the detections' image, e.g. a RealSense's /camera/aligned_depth_to_color/image_raw) and
``camera_info``; with ``use_imu: true`` ``imu`` and ``camera_info``; publishes ``tracks``, ``tracks/markers``
and ``tracks/image``. The node's parameters come from ``params_file`` (default: this package's
config/tracker.yaml).

``ros2-tracker launch tracker [name:=value ...]`` starts the same node from the same YAML file
without ROS 2's launch system: it reads this file statically (ros2_tracker/launching.py), so keep to
the constructs used here (DeclareLaunchArgument, LaunchConfiguration, Node, IfCondition/UnlessCondition,
GroupAction, ParameterValue, os.path.join, get_package_share_directory).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = 'ros2_tracker'


def generate_launch_description():
    """The tracker node and its launch arguments."""
    share = get_package_share_directory(PACKAGE)
    arguments = [
        DeclareLaunchArgument(
            'params_file', default_value=os.path.join(share, 'config', 'tracker.yaml'),
            description='Tracker parameters (ROS 2 parameter YAML, /** form)'),
        DeclareLaunchArgument(
            'namespace', default_value='', description='Namespace of the node and its topics'),
        DeclareLaunchArgument(
            'detections_topic', default_value='detections',
            description='Input detections (ros2_tracker/msg/Detection2DArray)'),
        DeclareLaunchArgument(
            'image_topic', default_value='image',
            description='Input images (sensor_msgs/Image), used when the parameters set use_images'),
        DeclareLaunchArgument(
            'depth_topic', default_value='depth',
            description='Registered depth images (sensor_msgs/Image; with the parameter depth_input: '
                        'compressedDepth, their <depth_topic>/compressedDepth), used when the parameters set '
                        'use_depth'),
        DeclareLaunchArgument(
            'camera_info_topic', default_value='camera_info',
            description='The camera\'s sensor_msgs/CameraInfo, used with use_depth or use_imu'),
        DeclareLaunchArgument(
            'imu_topic', default_value='imu',
            description='The gyro (sensor_msgs/Imu), used when the parameters set use_imu'),
        DeclareLaunchArgument(
            'use_sim_time', default_value='false', choices=['true', 'false'],
            description='Use /clock (e.g. from a replay) instead of the system clock'),
    ]
    tracker = Node(
        package=PACKAGE,
        executable='tracker_node',
        name='tracker',
        namespace=LaunchConfiguration('namespace'),
        parameters=[
            LaunchConfiguration('params_file'),
            {'use_sim_time': LaunchConfiguration('use_sim_time')},
        ],
        remappings=[
            ('detections', LaunchConfiguration('detections_topic')),
            ('image', LaunchConfiguration('image_topic')),
            ('depth', LaunchConfiguration('depth_topic')),
            ('camera_info', LaunchConfiguration('camera_info_topic')),
            ('imu', LaunchConfiguration('imu_topic')),
        ],
        output='screen',
        emulate_tty=True,
    )
    return LaunchDescription([*arguments, tracker])
