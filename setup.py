"""pip / venv installation of the ros2_tracker Python package.

In a colcon workspace the package is built by CMakeLists.txt (ament_cmake + ament_cmake_python),
which also generates the message interfaces; see docs/architecture.md.
"""

from setuptools import find_packages, setup

setup(
    name="ros2_tracker",
    version="0.1.0",
    description="ROS 2 multi-object tracking: Kalman/Hungarian core, re-ID, Tracktor, TensorRT",
    packages=find_packages(include=["ros2_tracker", "ros2_tracker.*"]),
    package_data={"ros2_tracker": ["py.typed"]},
    python_requires=">=3.10",
    install_requires=["numpy", "scipy", "pyyaml"],
    entry_points={
        "console_scripts": [
            "ros2-tracker = ros2_tracker.cli.main:main",
        ],
    },
)
