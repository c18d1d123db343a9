"""Launch the whole tracking graph: replay (or a camera) -> detector -> tracker -> recorder (+ RViz).

    ros2 launch ros2_tracker pipeline.launch.py source:=/data/TUD-Campus [rate:=1.0]
        [use_detector:=false] [model_path:=yolox_nano.onnx] [record:=false] [bag:=F]
        [rviz:=false] [fixed_frame:=camera] [camera:=false] [image_topic:=image] [params_file:=F]
        [pipeline_params_file:=F] [namespace:=NS] [use_sim_time:=false]

* ``camera:=false`` (default): replay_node plays ``source`` (a MOTChallenge folder, a video file or a
  rosbag2) and the launch shuts down when the replay ends. ``camera:=true``: no replay; a camera
  driver publishes sensor_msgs/Image on ``image_topic``.
* ``use_detector:=true``: detector_node (YOLOX, ``model_path``) detects on the images;
  ``use_detector:=false``: the replay publishes the source's recorded detections (det/det.txt).
* tracker_node tracks (parameters: ``params_file``, default config/tracker.yaml).
* ``record:=true``: recorder_node writes tracks, detections and the nodes' ``~/timing`` topics to the
  rosbag2 folder ``bag`` (default: ``tracks_<namespace>_<YYYY_MM_DD-HH_MM_SS>`` in the working
  directory). ``rviz:=true``: RViz2 with config/tracker.rviz (the annotated image
  ``tracks/image`` needs ``use_images: true`` in the tracker's ``params_file``), its fixed frame
  ``fixed_frame``: the images' frame_id (the replay's is ``camera``; a camera driver's e.g.
  ``camera_color_optical_frame``), in which the markers are drawn.

Replay, detector and recorder parameters come from ``pipeline_params_file`` (config/pipeline.yaml).
``ros2-tracker launch pipeline [name:=value ...]`` starts the same nodes from the same YAML files
without ROS 2's launch system: it reads this file statically (ros2_tracker/launching.py), so keep to
the constructs used here.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, Shutdown
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

PACKAGE = 'ros2_tracker'


def _declare_arguments(share):
    """Every launch argument of the pipeline."""
    return [
        DeclareLaunchArgument(
            'source', default_value='',
            description='Replay source: MOTChallenge folder, video file, or rosbag2 (folder or .mcap)'),
        DeclareLaunchArgument(
            'rate', default_value='1.0',
            description='Replay rate: 1.0 real time, 2.0 twice as fast, 0.0 lock-step as fast as possible'),
        DeclareLaunchArgument(
            'camera', default_value='false', choices=['true', 'false'],
            description='true: no replay; a camera driver publishes images on image_topic'),
        DeclareLaunchArgument(
            'image_topic', default_value='image', description='Image topic (sensor_msgs/Image)'),
        DeclareLaunchArgument(
            'use_detector', default_value='false', choices=['true', 'false'],
            description='true: run detector_node on the images; false: replay the recorded detections'),
        DeclareLaunchArgument(
            'model_path', default_value='', description='YOLOX ONNX model of detector_node'),
        DeclareLaunchArgument(
            'record', default_value='false', choices=['true', 'false'],
            description='Record tracks, detections and timing with recorder_node'),
        DeclareLaunchArgument(
            'bag', default_value='',
            description='rosbag2 folder the recorder creates (empty: tracks_<namespace>_<date-time>)'),
        DeclareLaunchArgument(
            'rviz', default_value='false', choices=['true', 'false'],
            description='Start RViz2 with config/tracker.rviz'),
        DeclareLaunchArgument(
            'fixed_frame', default_value='camera',
            description="RViz2's fixed frame: the frame_id of the images (the markers are drawn in it)"),
        DeclareLaunchArgument(
            'params_file', default_value=os.path.join(share, 'config', 'tracker.yaml'),
            description='Tracker parameters (ROS 2 parameter YAML, /** form)'),
        DeclareLaunchArgument(
            'pipeline_params_file', default_value=os.path.join(share, 'config', 'pipeline.yaml'),
            description='Replay, detector and recorder parameters (ROS 2 parameter YAML)'),
        DeclareLaunchArgument(
            'namespace', default_value='', description='Namespace of every node and topic'),
        DeclareLaunchArgument(
            'use_sim_time', default_value='false', choices=['true', 'false'],
            description='Use /clock (published by the replay) instead of the system clock'),
    ]


def _replay(publish_detections, condition):
    """replay_node; the launch shuts down when it exits (end of the source)."""
    return Node(
        package=PACKAGE,
        executable='replay_node',
        name='replay',
        namespace=LaunchConfiguration('namespace'),
        parameters=[
            LaunchConfiguration('pipeline_params_file'),
            {
                'source': ParameterValue(LaunchConfiguration('source'), value_type=str),
                'rate': ParameterValue(LaunchConfiguration('rate'), value_type=float),
                'publish_detections': publish_detections,
                'use_sim_time': LaunchConfiguration('use_sim_time'),
                # a parameter, not a remap of 'image': the compressed images go to <image_topic>/compressed,
                # which a remap of 'image' would not move
                'image_topic': ParameterValue(LaunchConfiguration('image_topic'), value_type=str),
                # with record:=true, frame 1 waits for the recorder (its bag then starts with frame 1)
                'wait_for_recorder': ParameterValue(LaunchConfiguration('record'), value_type=bool),
            },
        ],
        condition=condition,
        on_exit=Shutdown(reason='replay finished'),
        output='screen',
        emulate_tty=True,
    )


def _detector(overrides, condition, sim_time):
    """detector_node; ``overrides``: parameters over the pipeline params file's."""
    return Node(
        package=PACKAGE,
        executable='detector_node',
        name='detector',
        namespace=LaunchConfiguration('namespace'),
        parameters=[
            LaunchConfiguration('pipeline_params_file'),
            {'model_path': ParameterValue(LaunchConfiguration('model_path'), value_type=str),
             # as the replay's: with input compressed it reads <image_topic>/compressed
             'image_topic': ParameterValue(LaunchConfiguration('image_topic'), value_type=str)},
            overrides,
            sim_time,
        ],
        condition=condition,
        output='screen',
        emulate_tty=True,
    )


def _tracker(overrides, condition, sim_time):
    """tracker_node; ``overrides``: parameters over ``params_file``'s."""
    return Node(
        package=PACKAGE,
        executable='tracker_node',
        name='tracker',
        namespace=LaunchConfiguration('namespace'),
        parameters=[LaunchConfiguration('params_file'), overrides, sim_time],
        remappings=[('image', LaunchConfiguration('image_topic'))],
        condition=condition,
        output='screen',
        emulate_tty=True,
    )


def _recorder(topics, condition, sim_time):
    """recorder_node recording ``topics`` into the ``bag`` folder."""
    return Node(
        package=PACKAGE,
        executable='recorder_node',
        name='recorder',
        namespace=LaunchConfiguration('namespace'),
        parameters=[
            LaunchConfiguration('pipeline_params_file'),
            {'output': ParameterValue(LaunchConfiguration('bag'), value_type=str), 'topics': topics},
            sim_time,
        ],
        condition=condition,
        output='screen',
        emulate_tty=True,
    )


def generate_launch_description():
    """Replay/camera, detector, tracker, recorder and RViz, each switched by its launch argument."""
    share = get_package_share_directory(PACKAGE)
    use_detector = LaunchConfiguration('use_detector')
    sim_time = {'use_sim_time': LaunchConfiguration('use_sim_time')}
    replay = GroupAction(
        condition=UnlessCondition(LaunchConfiguration('camera')),
        actions=[
            _replay(False, IfCondition(use_detector)),
            _replay(True, UnlessCondition(use_detector)),
        ],
    )
    # Image subscriptions: reliable from the replay (best effort lost most 640x480 frames sent by a reliable
    # publisher: 17 of 71 reached the detector), the params files' sensor_data from a camera driver (a
    # reliable subscription would not match its best-effort publisher). The same for the tracker's depth,
    # camera_info and imu (sensor_qos): a replayed bag's depth images all arrive.
    from_replay = {'image_qos': 'reliable'}
    detector = GroupAction(actions=[
        GroupAction(condition=UnlessCondition(LaunchConfiguration('camera')),
                    actions=[_detector(from_replay, IfCondition(use_detector), sim_time)]),
        GroupAction(condition=IfCondition(LaunchConfiguration('camera')),
                    actions=[_detector({}, IfCondition(use_detector), sim_time)]),
    ])
    tracker_from_replay = {'image_qos': 'reliable', 'sensor_qos': 'reliable'}
    tracker = GroupAction(actions=[
        _tracker(tracker_from_replay, UnlessCondition(LaunchConfiguration('camera')), sim_time),
        _tracker({}, IfCondition(LaunchConfiguration('camera')), sim_time),
    ])
    # the recorder waits for each topic's publisher before it says ready (and the replay for that): only the
    # topics this graph publishes, or the first frame waits max_wait_s for a detector that is not there
    recorder = GroupAction(condition=IfCondition(LaunchConfiguration('record')), actions=[
        _recorder(['tracks', 'detections', '/clock', 'replay/timing', 'detector/timing', 'tracker/timing'],
                  IfCondition(use_detector), sim_time),
        _recorder(['tracks', 'detections', '/clock', 'replay/timing', 'tracker/timing'],
                  UnlessCondition(use_detector), sim_time),
    ])
    rviz = Node(
        package='rviz2',
        executable='rviz2',
        name='rviz2',
        namespace=LaunchConfiguration('namespace'),
        arguments=['-d', os.path.join(share, 'config', 'tracker.rviz'),
                   '-f', LaunchConfiguration('fixed_frame')],
        parameters=[sim_time],
        condition=IfCondition(LaunchConfiguration('rviz')),
        output='screen',
    )
    return LaunchDescription([*_declare_arguments(share), replay, detector, tracker, recorder, rviz])
