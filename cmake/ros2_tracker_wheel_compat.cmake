# Build fixes for the ROS 2 wheels from PyPI (see docs/architecture.md and ros2-from-pypi notes).
#
# Both are no-ops in a sourced ROS 2 installation (apt / source build, colcon workspace): there
# AMENT_PREFIX_PATH is set and no imported target points into /opt/python.

# Default AMENT_PREFIX_PATH to the Python prefix (the venv) when it is unset. rosidl reads the ament
# resource index only from $ENV{AMENT_PREFIX_PATH} ("No 'rosidl_typesupport_c' found" otherwise), and
# the PyPI wheels install their index into the venv prefix without setting the variable.
# Needs find_package(Python3 COMPONENTS Interpreter) first.
function(ros2_tracker_default_ament_prefix_path)
  if(NOT "$ENV{AMENT_PREFIX_PATH}" STREQUAL "")
    return()
  endif()
  execute_process(
    COMMAND "${Python3_EXECUTABLE}" -c "import sys; print(sys.prefix)"
    OUTPUT_VARIABLE _prefix
    OUTPUT_STRIP_TRAILING_WHITESPACE
    COMMAND_ERROR_IS_FATAL ANY)
  if(NOT EXISTS "${_prefix}/share/ament_index/resource_index")
    message(FATAL_ERROR "AMENT_PREFIX_PATH is unset and ${_prefix} (the prefix of ${Python3_EXECUTABLE}) "
      "holds no ament resource index: source a ROS 2 setup file, or build with the venv's Python "
      "(-DPython3_EXECUTABLE=<venv>/bin/python) after installing the ROS 2 wheels (scripts/setup.sh).")
  endif()
  message(STATUS "AMENT_PREFIX_PATH unset: using the Python prefix ${_prefix}")
  set(ENV{AMENT_PREFIX_PATH} "${_prefix}")
endfunction()

# The PyPI message wheels' exported *__rosidl_generator_py targets carry the include paths of the
# machine that built them (/opt/python/cp3XX-cp3XX/include/python3.X and its numpy), which do not
# exist here; CMake refuses to use such targets. Replace them with this Python's include paths.
# Call after rosidl_generate_interfaces() (all imported targets exist then), in the same directory.
function(ros2_tracker_fix_wheel_python_includes)
  get_property(_imported DIRECTORY PROPERTY IMPORTED_TARGETS)
  set(_patched 0)
  foreach(_target IN LISTS _imported)
    get_target_property(_inc ${_target} INTERFACE_INCLUDE_DIRECTORIES)
    if(_inc AND "${_inc}" MATCHES "/opt/python/")
      list(FILTER _inc EXCLUDE REGEX "^/opt/python/")
      list(APPEND _inc ${Python3_INCLUDE_DIRS} ${Python3_NumPy_INCLUDE_DIRS})
      list(REMOVE_DUPLICATES _inc)
      set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_inc}")
      math(EXPR _patched "${_patched} + 1")
    endif()
  endforeach()
  if(_patched GREATER 0)
    message(STATUS "Patched the Python include paths of ${_patched} imported targets from PyPI wheels")
  endif()
endfunction()
