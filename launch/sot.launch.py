"""Launch sot_node alone: follow one chosen target in the images (single-target mode).

    ros2 launch ros2_tracker sot.launch.py model_path:=/models/nanotrack_v2 [backend:=nano]
        [detector_model_path:=yolox_nano.onnx reid_model_path:=osnet.onnx] [params_file:=F]
        [namespace:=NS] [image_topic:=image] [tracks_topic:=tracks] [use_sim_time:=false]

Topics (relative to ``namespace``): subscribes ``image`` (and ``tracks`` when the parameter file sets
``use_tracks: true``); publishes ``target`` (ros2_tracker/Track), ``target/array`` and ``target/image``.
Services: ``sot/start`` (ros2_tracker/srv/StartTarget) and ``sot/stop``. Parameters come from
``params_file`` (default: this package's config/sot.yaml); the model files from the arguments.

``ros2-tracker launch sot [name:=value ...]`` starts the same node without ROS 2's launch system: it
reads this file statically (ros2_tracker/launching.py), so keep to the constructs used here.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

PACKAGE = 'ros2_tracker'


def generate_launch_description():
    """The single-target node and its launch arguments."""
    share = get_package_share_directory(PACKAGE)
    arguments = [
        DeclareLaunchArgument(
            'params_file', default_value=os.path.join(share, 'config', 'sot.yaml'),
            description='sot_node parameters (ROS 2 parameter YAML, /** form)'),
        DeclareLaunchArgument(
            'namespace', default_value='', description='Namespace of the node and its topics'),
        DeclareLaunchArgument(
            'backend', default_value='nano', description='Single-target backend (nano, mil, ...)'),
        DeclareLaunchArgument(
            'model_path', default_value='',
            description='Backend model: the NanoTrack v2 folder for nano; unused by mil'),
        DeclareLaunchArgument(
            'detector_model_path', default_value='',
            description='YOLOX ONNX model for re-acquisition (needs reid_model_path); empty = none'),
        DeclareLaunchArgument(
            'reid_model_path', default_value='',
            description='Re-ID ONNX model comparing candidates with the target; empty = none'),
        DeclareLaunchArgument(
            'image_topic', default_value='image', description='Input images (sensor_msgs/Image)'),
        DeclareLaunchArgument(
            'tracks_topic', default_value='tracks',
            description='Multi-object tracks for starting from a track id (with use_tracks: true)'),
        DeclareLaunchArgument(
            'use_sim_time', default_value='false', choices=['true', 'false'],
            description='Use /clock (e.g. from a replay) instead of the system clock'),
    ]
    sot = Node(
        package=PACKAGE,
        executable='sot_node',
        name='sot',
        namespace=LaunchConfiguration('namespace'),
        parameters=[
            LaunchConfiguration('params_file'),
            {
                'backend': ParameterValue(LaunchConfiguration('backend'), value_type=str),
                'model_path': ParameterValue(LaunchConfiguration('model_path'), value_type=str),
                'detector_model_path': ParameterValue(LaunchConfiguration('detector_model_path'),
                                                      value_type=str),
                'reid_model_path': ParameterValue(LaunchConfiguration('reid_model_path'), value_type=str),
                'use_sim_time': LaunchConfiguration('use_sim_time'),
            },
        ],
        remappings=[
            ('image', LaunchConfiguration('image_topic')),
            ('tracks', LaunchConfiguration('tracks_topic')),
        ],
        output='screen',
        emulate_tty=True,
    )
    return LaunchDescription([*arguments, sot])
