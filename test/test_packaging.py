"""Packaging: package.xml matches the code's imports, the venv set-up works, the core stays ROS-free,
and the same CMakeLists.txt builds a complete colcon install.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "ros2_tracker"

# Third-party modules the code may import, by the rosdep key that package.xml must then list.
ROSDEP_KEYS = {
    "numpy": "python3-numpy",
    "scipy": "python3-scipy",
    "yaml": "python3-yaml",
    "cv2": "python3-opencv",
    "matplotlib": "python3-matplotlib",
    "tqdm": "python3-tqdm",
}
# Installed with pip on every platform (no rosdep key); requirements.in lists them.
PIP_ONLY = {
    "onnxruntime",
    "onnx",
    "mcap",
    "mcap_ros2",
    "rosbags",
    "trackeval",
    "motmetrics",
    "torch",
    "torchvision",
    "tensorrt",
    "zstandard",
}
# ROS packages whose names do not end in _msgs / _srvs / _interfaces.
ROS_PACKAGES = {
    "rclpy",
    "ament_index_python",
    "rosidl_runtime_py",
    "launch",
    "launch_ros",
    "cv_bridge",
    "message_filters",
    "tf2_ros",
    "rosbag2_py",
    "image_transport",
}
# What the brief requires of every install, whatever the code imports today.
REQUIRED_EXEC = {
    "rclpy",
    "rosidl_default_runtime",
    "std_msgs",
    "builtin_interfaces",
    "sensor_msgs",
    "visualization_msgs",
    "python3-numpy",
    "python3-scipy",
    "python3-yaml",
}
# Never imported by ros2_tracker.core (it must run anywhere, numpy and scipy only).
CORE_FORBIDDEN = {"rclpy", "torch", "cv2", "yaml", "onnxruntime", "matplotlib"}


def _package():
    catkin_pkg = pytest.importorskip("catkin_pkg.package", reason="catkin_pkg is not installed")
    return catkin_pkg.parse_package(str(ROOT / "package.xml"))


def _is_ros_package(name: str) -> bool:
    return name in ROS_PACKAGES or name.endswith(("_msgs", "_srvs", "_interfaces"))


def _imports(tree: ast.AST) -> tuple[set[str], set[str]]:
    """Top-level module names imported by ``tree``: (all, those inside ``try: ... except ImportError``)."""
    names: set[str] = set()
    guarded: set[str] = set()

    def visit(node: ast.AST, in_guard: bool) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            if isinstance(node, ast.ImportFrom) and (node.level or node.module is None):
                return  # relative import
            for mod in [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]:
                top = mod.split(".")[0]
                names.add(top)
                if in_guard:
                    guarded.add(top)
            return
        guard = in_guard
        if isinstance(node, ast.Try):
            caught = ast.unparse(ast.Tuple([h.type for h in node.handlers if h.type], ast.Load()))
            guard = in_guard or "ImportError" in caught or "ModuleNotFoundError" in caught
            for child in node.body:
                visit(child, guard)
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(child, in_guard)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, guard)

    visit(tree, False)
    return names, guarded


def _code_imports() -> tuple[set[str], set[str]]:
    """Third-party top-level modules imported by ros2_tracker/: (required, optional)."""
    names: set[str] = set()
    guarded: set[str] = set()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        n, g = _imports(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        names |= n
        guarded |= g
    third_party = {n for n in names if n not in sys.stdlib_module_names and n != "ros2_tracker"}
    # A module imported under an ImportError guard anywhere is an optional dependency.
    return third_party - guarded, third_party & guarded


def _cmake_list(variable_or_call: str) -> list[str]:
    text = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    match = re.search(rf"{variable_or_call}\s*([^)]*)\)", text)
    assert match, f"{variable_or_call} not found in CMakeLists.txt"
    return re.findall(r'"?([\w./]+)"?', match.group(1))


def _in_editable_venv() -> bool:
    for dist in importlib.metadata.distributions(name="ros2_tracker"):
        direct_url = dist.read_text("direct_url.json")
        if direct_url and json.loads(direct_url).get("dir_info", {}).get("editable", False):
            return True
    return False


needs_venv = pytest.mark.skipif(
    not _in_editable_venv(), reason="needs the editable venv set-up (bash scripts/setup.sh)"
)


# ---- package.xml ------------------------------------------------------------------------------------


def test_package_xml_is_valid_format_3():
    pkg = _package()
    pkg.validate()
    assert pkg.package_format == 3
    assert pkg.name == "ros2_tracker"
    assert pkg.licenses == ["Apache-2.0"]
    assert pkg.get_build_type() == "ament_cmake"
    assert all(re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]+", m.email) for m in pkg.maintainers)
    assert "rosidl_interface_packages" in [g.name for g in pkg.member_of_groups]
    assert {"ament_cmake", "ament_cmake_python", "rosidl_default_generators"} <= {
        d.name for d in pkg.buildtool_depends
    }


def test_package_xml_declares_every_runtime_import():
    exec_deps = {d.name for d in _package().exec_depends}
    required, _optional = _code_imports()
    missing = sorted(REQUIRED_EXEC - exec_deps)
    unknown = []
    for module in sorted(required):
        if _is_ros_package(module):
            key = module
        elif module in ROSDEP_KEYS:
            key = ROSDEP_KEYS[module]
        elif module in PIP_ONLY:
            continue
        else:
            unknown.append(module)
            continue
        if key not in exec_deps:
            missing.append(f"{key} (imported as {module})")
    assert not unknown, (
        f"ros2_tracker imports {unknown}: add its rosdep key to package.xml and to ROSDEP_KEYS in this "
        "test, or to PIP_ONLY if it has none (and to requirements.in)"
    )
    assert not missing, f"package.xml lacks <exec_depend> for: {missing}"


def test_package_xml_declares_what_the_launch_files_import_and_start():
    exec_deps = {d.name for d in _package().exec_depends}
    needed: set[str] = set()
    for path in sorted((ROOT / "launch").glob("*.launch.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        needed |= {m for m in _imports(tree)[0] if _is_ros_package(m)}
        for call in ast.walk(tree):  # Node(package='rviz2', ...): the packages whose executables it starts
            if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "Node":
                for kw in call.keywords:
                    if kw.arg == "package" and isinstance(kw.value, ast.Constant):
                        needed.add(kw.value.value)
    needed -= {"ros2_tracker"}
    assert {"launch", "launch_ros"} <= needed
    missing = sorted(needed - exec_deps)
    assert not missing, f"package.xml lacks <exec_depend> for: {missing}"


def test_msg_dependencies_are_build_and_exec_depends():
    pkg = _package()
    build = {d.name for d in pkg.build_depends}
    exec_deps = {d.name for d in pkg.exec_depends}
    used = set()
    for path in [*(ROOT / "msg").glob("*.msg"), *(ROOT / "srv").glob("*.srv")]:
        used |= set(re.findall(r"^\s*(\w+)/\w+", path.read_text(encoding="utf-8"), flags=re.MULTILINE))
    assert used == {"std_msgs"}
    assert used <= build and used <= exec_deps


def test_versions_agree():
    from ros2_tracker import __version__

    setup_py = (ROOT / "setup.py").read_text(encoding="utf-8")
    assert re.search(r'version="([^"]+)"', setup_py).group(1) == __version__
    assert _package().version == __version__


# ---- CMakeLists.txt ------------------------------------------------------------------------------------


def test_cmake_generates_every_msg_and_srv_file():
    listed = {Path(p).name for p in _cmake_list("rosidl_generate_interfaces\\(")
              if p.endswith((".msg", ".srv"))}
    interfaces = [*(ROOT / "msg").glob("*.msg"), *(ROOT / "srv").glob("*.srv")]
    assert listed == {p.name for p in interfaces}


def test_every_node_module_is_installed_for_ros2_run():
    listed = set(_cmake_list(r"set\(ROS2_TRACKER_NODES"))
    modules = {p.stem for p in (PACKAGE_DIR / "nodes").glob("*_node.py")}
    assert modules <= listed, f"add {sorted(modules - listed)} to ROS2_TRACKER_NODES in CMakeLists.txt"
    assert listed <= modules, f"ROS2_TRACKER_NODES lists missing modules {sorted(listed - modules)}"
    for name in sorted(modules):
        tree = ast.parse((PACKAGE_DIR / "nodes" / f"{name}.py").read_text(encoding="utf-8"))
        assert any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body), (
            f"{name} has no main()"
        )


# ---- the ROS-free core ----------------------------------------------------------------------------------


def test_core_imports_only_numpy_scipy_and_stdlib():
    probe = (
        "import json, sys; before = set(sys.modules); import ros2_tracker.core; "
        "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before})))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "ros2_tracker" in loaded
    assert not loaded & CORE_FORBIDDEN, f"ros2_tracker.core imports {sorted(loaded & CORE_FORBIDDEN)}"
    # Everything else must be the stdlib, numpy, scipy or their helpers (cython_runtime: scipy's Cython).
    third_party = {m for m in loaded - {"cython_runtime"} if m not in sys.stdlib_module_names and m[0] != "_"}
    assert third_party <= {"ros2_tracker", "numpy", "scipy"}, f"unexpected: {sorted(third_party)}"


# ---- the venv set-up (scripts/setup.sh) -------------------------------------------------------------------


@needs_venv
def test_console_script_runs():
    script = Path(sys.prefix) / "bin" / "ros2-tracker"
    assert script.is_file() and os.access(script, os.X_OK)
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "usage: ros2-tracker" in result.stdout


@needs_venv
@pytest.mark.ros
def test_fresh_process_imports_sources_and_generated_messages():
    """`env -i .venv/bin/python` from any directory: sources from this checkout, messages from the venv."""
    probe = (
        "import json, ros2_tracker, ros2_tracker.core, ros2_tracker.msg as m; "
        "print(json.dumps([ros2_tracker.__file__, m.__file__, m.TrackArray.__name__]))"
    )
    result = subprocess.run(
        ["env", "-i", sys.executable, "-c", probe], capture_output=True, text=True, cwd="/", timeout=60
    )
    if "No module named 'ros2_tracker.msg'" in result.stderr:
        pytest.skip("ros2_tracker.msg is not built: run `bash scripts/setup.sh`")
    assert result.returncode == 0, result.stderr
    source, generated, name = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(source).resolve() == PACKAGE_DIR / "__init__.py"
    assert Path(generated).resolve().is_relative_to(Path(sys.prefix).resolve())
    assert name == "TrackArray"


@needs_venv
@pytest.mark.ros
def test_node_launchers_are_installed_in_the_venv():
    lib = Path(sys.prefix) / "lib" / "ros2_tracker"
    if not lib.is_dir():
        pytest.skip("the messages are not built into the venv: run `bash scripts/setup.sh`")
    from ros2_tracker.nodes.__main__ import NODES

    names = _cmake_list(r"set\(ROS2_TRACKER_NODES")
    assert sorted(names) == sorted(NODES)  # every node `ros2 run` knows, python -m ros2_tracker.nodes starts
    for name in names:
        launcher = lib / name
        assert launcher.is_file() and os.access(launcher, os.X_OK), launcher
        assert f'main(["{name}", *sys.argv[1:]])' in launcher.read_text(encoding="utf-8")


# ---- the colcon path (robot / ROS workspace) --------------------------------------------------------------


@pytest.mark.ros
@pytest.mark.slow
def test_colcon_build_installs_one_complete_package(tmp_path):
    colcon = shutil.which("colcon", path=str(Path(sys.executable).parent))
    if colcon is None or not (Path(sys.prefix) / "share" / "ament_index").is_dir():
        pytest.skip("needs colcon and the ROS 2 build wheels in this venv (bash scripts/setup.sh)")
    src = tmp_path / "src" / "ros2_tracker"
    src.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for item in (
        "CMakeLists.txt",
        "package.xml",
        "setup.py",
        "cmake",
        "msg",
        "srv",
        "ros2_tracker",
        "config",
        "launch",
    ):
        if (ROOT / item).is_dir():
            shutil.copytree(ROOT / item, src / item, ignore=ignore)
        elif (ROOT / item).is_file():
            shutil.copy2(ROOT / item, src / item)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH", "PYTHONPATH")
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["ROS_LOG_DIR"] = str(tmp_path / "ros-log")
    build = subprocess.run(
        [colcon, "build", "--base-paths", "src", "--cmake-args", "-DBUILD_TESTING=OFF"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]

    prefix = tmp_path / "install" / "ros2_tracker"
    probe = (
        "import json, ros2_tracker, ros2_tracker.core, ros2_tracker.msg as m; "
        "from rclpy.serialization import serialize_message; "
        "print(json.dumps([ros2_tracker.__file__, m.__file__, len(serialize_message(m.TrackArray()))]))"
    )
    run = subprocess.run(
        ["bash", "-c", f'. install/setup.sh && "{sys.executable}" -c "$0"', probe],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    source, generated, size = json.loads(run.stdout.strip().splitlines()[-1])
    site = (
        prefix
        / "lib"
        / f"python{sys.version_info[0]}.{sys.version_info[1]}"
        / "site-packages"
        / "ros2_tracker"
    )
    # one merged Python package: our sources and the generated msg/ side by side in the install space
    assert Path(source) == site / "__init__.py"
    assert Path(generated).parent == site / "msg"
    assert size > 0
    for name in _cmake_list(r"set\(ROS2_TRACKER_NODES"):
        assert os.access(prefix / "lib" / "ros2_tracker" / name, os.X_OK), name
    assert os.access(prefix / "bin" / "ros2-tracker", os.X_OK)
    assert (prefix / "share" / "ros2_tracker" / "config" / "tracker.yaml").is_file()
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "ros2_tracker").is_file()
