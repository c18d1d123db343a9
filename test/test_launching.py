"""The process supervisor of ros2_tracker.launching, with real child processes (no ROS needed).

Children are small Python programs started through :class:`NodeSpec` with ``executable`` set to this
interpreter, so the supervisor's own logic (output prefixes, signal forwarding, SIGINT -> SIGTERM ->
SIGKILL escalation, exit codes, shutdown when a ``shutdown_on_exit`` node ends) is what is tested.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from ros2_tracker.launching import (
    PRIVATE_DOMAIN_IDS,
    NodeSpec,
    Supervisor,
    launch_graph,
    node_environment,
    param_literal,
    private_domain_id,
)

# a child that reports it is up, then waits; what it does on SIGINT/SIGTERM is set per test
CHILD = """
import signal, sys, time
mode = sys.argv[1]
if mode in ("ignore_int", "ignore_all"):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
if mode == "ignore_all":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("up", flush=True)
try:
    time.sleep(60)
except KeyboardInterrupt:
    print("stopping", flush=True)
    sys.exit(0)
"""


def child(name: str, mode: str = "clean", **kw) -> NodeSpec:
    return NodeSpec(name=name, module="", executable=sys.executable, arguments=("-c", CHILD, mode), **kw)


class Lines(list):
    def __call__(self, line: str) -> None:
        self.append(line)

    def wait_for(self, text: str, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while not any(text in line for line in self) and time.monotonic() < end:
            time.sleep(0.02)
        assert any(text in line for line in self), f"{text!r} not in {list(self)}"


def test_command_line_of_a_node_module():
    spec = NodeSpec("trk", "tracker_node", params_files=(os.devnull,), namespace="/cam1",
                    params={"max_lost_s": 1.5, "use_images": True, "frame_id": "x y", "classes": [0, 2]},
                    remaps=(("detections", "/dets"),))
    cmd = spec.command("py")
    assert cmd == ["py", "-m", "ros2_tracker.nodes", "tracker_node", "--ros-args", "-r", "__node:=trk",
                   "-r", "__ns:=/cam1", "--params-file", os.devnull, "-p", "max_lost_s:=1.5",
                   "-p", "use_images:=true", "-p", 'frame_id:="x y"', "-p", "classes:=[0, 2]",
                   "-r", "detections:=/dets"]
    with pytest.raises(ValueError, match="empty list"):
        param_literal([])


def test_private_domains_keep_fast_dds_ports_below_the_ephemeral_port_range():
    """Fast DDS listens on 7400 + 250 x domain + 11 + 2 x participant (the highest of its default ports);
    Linux hands out outgoing ports from 32768 (net.ipv4.ip_local_port_range), where a port a participant
    needs may be taken. Tests, replays and benchmarks derived domains up to 199 before."""
    domains = {private_domain_id(key) for key in range(-300, 3000)}
    assert domains == set(PRIVATE_DOMAIN_IDS) and 0 not in domains  # 0: every ROS program's default
    assert 7400 + 250 * max(domains) + 11 + 2 * 50 < 32768  # room for 50 participants per domain


def test_node_environment_keeps_the_wheel_bootstrap_flag_only_with_its_library_path():
    assert "_ROS_WHEELS_BOOTSTRAP_COMPLETE" not in node_environment({"_ROS_WHEELS_BOOTSTRAP_COMPLETE": "1"})
    env = node_environment({"_ROS_WHEELS_BOOTSTRAP_COMPLETE": "1", "LD_LIBRARY_PATH": "/x"})
    assert env["_ROS_WHEELS_BOOTSTRAP_COMPLETE"] == "1" and env["PYTHONUNBUFFERED"] == "1"


def test_output_is_prefixed_and_sigint_stops_every_node_cleanly():
    lines = Lines()
    sup = launch_graph([child("a"), child("b")], sink=lines)
    lines.wait_for("[a] up")
    lines.wait_for("[b] up")
    t0 = time.monotonic()
    codes = sup.shutdown(sigint_timeout=5.0)
    assert time.monotonic() - t0 < 3.0
    assert codes == {"a": 0, "b": 0}
    assert "[a] stopping" in lines and "[b] stopping" in lines
    assert sup.signals_sent("a") == ["SIGINT"]
    assert "a: exit code 0 (sent SIGINT)" in sup.report()


def test_shutdown_escalates_to_sigterm_then_sigkill():
    lines = Lines()
    sup = launch_graph([child("stubborn", "ignore_int"), child("deaf", "ignore_all")], sink=lines)
    lines.wait_for("[stubborn] up")
    lines.wait_for("[deaf] up")
    t0 = time.monotonic()
    codes = sup.shutdown(sigint_timeout=0.5, sigterm_timeout=0.5)
    assert time.monotonic() - t0 < 4.0
    assert codes == {"stubborn": -signal.SIGTERM, "deaf": -signal.SIGKILL}
    assert sup.signals_sent("stubborn") == ["SIGINT", "SIGTERM"]
    assert sup.signals_sent("deaf") == ["SIGINT", "SIGTERM", "SIGKILL"]
    assert "killed by SIGKILL" in sup.report()


def test_a_shutdown_on_exit_node_that_ends_stops_the_others():
    lines = Lines()
    quick = NodeSpec("replay", "", executable=sys.executable, arguments=("-c", "print('done')"),
                     shutdown_on_exit=True)
    sup = launch_graph([child("tracker"), quick], sink=lines)
    lines.wait_for("[tracker] up")
    codes = sup.supervise(poll_s=0.05, sigint_timeout=5.0)
    assert codes == {"tracker": 0, "replay": 0}
    assert sup.signals_sent("tracker") == ["SIGINT"] and sup.stop_requested
    assert any("replay exited (0); shutting down" in line for line in lines)


def test_signals_to_the_supervisor_are_forwarded_to_every_node():
    lines = Lines()
    sup = launch_graph([child("a"), child("b", "ignore_int")], sink=lines)
    lines.wait_for("[a] up")
    lines.wait_for("[b] up")
    before = signal.getsignal(signal.SIGINT)
    with sup.forwarding_signals():
        os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C in a terminal
        codes = sup.supervise(poll_s=0.05, sigint_timeout=0.5, sigterm_timeout=2.0)
    assert codes == {"a": 0, "b": -signal.SIGTERM}
    assert signal.getsignal(signal.SIGINT) is before  # restored


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_while_the_nodes_start_stops_those_started_and_starts_no_more(sig):
    """The forwarding is in place before the first node starts (it was installed after the last: a SIGTERM
    while starting killed the supervisor and left the nodes already started running)."""
    lines = Lines()

    def sink(line: str) -> None:
        lines(line)
        if line.startswith("[launch] started b"):
            # to this thread, so handled before start() returns (os.kill to the process may land on a
            # reader thread and be handled after the next node started: seen under load)
            signal.raise_signal(sig)

    # handled as a terminal's shell leaves it (under nohup the supervisor keeps an ignored hangup ignored)
    previous = signal.signal(sig, signal.SIG_DFL)
    try:
        sup = Supervisor(sink)
        with sup.forwarding_signals():
            sup.start_all([child("a"), child("b"), child("c")])
            sup.supervise(poll_s=0.05, sigint_timeout=2.0, sigterm_timeout=2.0)
    finally:
        signal.signal(sig, previous)
    codes = sup.shutdown(sigint_timeout=2.0, sigterm_timeout=2.0)
    assert set(codes) == {"a", "b"} and all(code is not None for code in codes.values())
    assert not any("started c" in line for line in lines)


def test_nodes_stop_on_sigint_even_when_the_supervisor_was_started_ignoring_it():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a background job of a script is started
    try:
        lines = Lines()
        sup = launch_graph([child("a")], sink=lines)
        lines.wait_for("[a] up")
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # still ignored here
        codes = sup.shutdown(sigint_timeout=5.0)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert codes == {"a": 0} and "[a] stopping" in lines  # the node got SIGINT, not the escalation


def test_a_failed_start_stops_the_nodes_already_started():
    lines = Lines()
    bad = NodeSpec("bad", "", executable="/nonexistent/program")
    with pytest.raises(OSError):
        launch_graph([child("a"), bad], sink=lines)
    started = [line for line in lines if "started a (pid" in line]
    pid = int(started[0].split("pid ")[1].split(")")[0])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_the_node_entry_names_the_nodes_when_given_none_of_them(capsys):
    from ros2_tracker.nodes.__main__ import main

    assert main(["tracker"]) == 2 and main([]) == 2
    err = capsys.readouterr().err
    assert "'tracker' is not one" in err and "tracker_node, detector_node, replay_node" in err


def test_an_import_error_caused_by_a_ctrl_c_counts_as_the_ctrl_c():
    """pybind11 turns a KeyboardInterrupt that comes while rclpy's extension initialises into
    ImportError("initialization failed") (seen: exit 1 and a traceback for 6 of 10 SIGINTs 40 ms after
    librmw_fastrtps_cpp was mapped); any other ImportError is a real one and must surface."""
    from ros2_tracker.nodes.__main__ import _interrupted

    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as ki:
            raise ImportError("initialization failed") from ki
    except ImportError as exc:
        assert _interrupted(exc)
    assert _interrupted(KeyboardInterrupt())
    assert not _interrupted(ImportError("No module named 'onnxruntime'"))


@pytest.mark.ros
@pytest.mark.parametrize("node", ["tracker_node", "recorder_node"])
def test_ctrl_c_while_a_node_module_loads_is_a_clean_stop(node, ros_env, tmp_path):
    """A node's modules (rclpy, SciPy, ...) take a second or more to load before the node handles signals
    itself: a SIGINT then (a Ctrl-C during `ros2-tracker launch`) ended it with a KeyboardInterrupt
    traceback and exit -2 in the launch output; now the start-up of nodes/__main__.py stops it cleanly.
    The signal is sent once NumPy's extension is mapped: inside the node module's imports, whatever the
    machine's speed (a fixed delay landed in Python's own start-up on a loaded machine)."""
    import subprocess

    pytest.importorskip("rclpy", reason="rclpy is not installed")
    params = {"output": str(tmp_path / "bag")} if node == "recorder_node" else {}
    proc = subprocess.Popen(NodeSpec("early", node, params=params).command(), env=node_environment(ros_env),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    maps = Path(f"/proc/{proc.pid}/maps")
    end = time.monotonic() + 60
    while "_multiarray_umath" not in maps.read_text() and time.monotonic() < end:
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0 and "Traceback" not in out and "KeyboardInterrupt" not in out, out


def test_a_hangup_ignored_under_nohup_stays_ignored_by_the_supervisor_and_its_nodes():
    """``nohup ros2-tracker launch``: the hangup was handled (forwarded as a stop) and the nodes, started
    with it handled, got it back at its default (death): closing the terminal stopped the graph."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        lines = Lines()
        sup = Supervisor(lines)
        with sup.forwarding_signals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            sup.start_all([child("a")])
            lines.wait_for("[a] up")
            os.kill(os.getpid(), signal.SIGHUP)
            pid = int(next(line for line in lines if "started a (pid" in line).split("pid ")[1].split(")")[0])
            ignored = int(next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                               if line.startswith("SigIgn:")).split()[1], 16)
            assert ignored & (1 << (signal.SIGHUP - 1))  # the node ignores it too
            os.kill(pid, signal.SIGHUP)
            time.sleep(0.3)
            assert not sup.stop_requested and sup.running()
        codes = sup.shutdown(sigint_timeout=5.0)
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert codes == {"a": 0}


def test_nodes_started_from_a_worker_thread_outlive_that_thread():
    """The stop-with-the-supervisor request (prctl PDEATHSIG) fires when the *thread* that started a node
    ends, not the process: a node started from a worker thread was stopped as soon as that thread ended."""
    import threading

    node = ("import time; from ros2_tracker.nodes.spinning import _stop_with_supervisor; "
            "_stop_with_supervisor(); print('up', flush=True); time.sleep(60)")
    lines = Lines()
    sup = Supervisor(lines)

    def start_and_wait() -> None:  # the thread lives until the node has made its request
        sup.start(NodeSpec("a", "", executable=sys.executable, arguments=("-c", node)))
        lines.wait_for("[a] up")

    starter = threading.Thread(target=start_and_wait)
    starter.start()
    starter.join()
    time.sleep(0.5)
    try:
        assert sup.running() == ["a"], list(lines)
    finally:
        sup.shutdown(sigint_timeout=1.0, sigterm_timeout=2.0)


# a node of ours hung in its shutdown: it ignores SIGINT and SIGTERM, as one blocked in C code does
HUNG = """
import signal, time
from ros2_tracker.nodes.spinning import _stacks_on_request
_stacks_on_request()  # what run_node does first
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("up", flush=True)

def stuck_in_its_shutdown():
    time.sleep(60)

stuck_in_its_shutdown()
"""


@pytest.mark.parametrize("how", ["shutdown", "supervise"])
def test_a_node_that_will_not_stop_leaves_its_python_stacks_in_the_log_before_it_is_killed(how):
    """Seen once on a loaded CI: a detector_node ignored SIGINT and SIGTERM after a complete replay and was
    killed with nothing in the log to say where it hung. Before SIGKILL, each of our nodes gets SIGUSR1,
    for which run_node registered faulthandler: every thread's stack goes to the log. An external program
    (rviz2; here a plain child) is not sent SIGUSR1, which would kill it."""
    lines = Lines()
    hung = NodeSpec("hung", "detector_node", executable=sys.executable, arguments=("-c", HUNG))
    sup = launch_graph([hung, child("deaf", "ignore_all")], sink=lines)
    lines.wait_for("[hung] up")
    lines.wait_for("[deaf] up")
    if how == "shutdown":
        codes = sup.shutdown(sigint_timeout=0.5, sigterm_timeout=0.5)
    else:
        sup.request_stop(signal.SIGINT)
        codes = sup.supervise(poll_s=0.05, sigint_timeout=0.5, sigterm_timeout=0.5)
    assert codes == {"hung": -signal.SIGKILL, "deaf": -signal.SIGKILL}
    text = "\n".join(lines)
    assert "hung did not stop: their Python stacks follow (SIGUSR1)" in text
    stack = [line for line in lines if line.startswith("[hung]") and "stuck_in_its_shutdown" in line]
    assert stack, text  # faulthandler's "File ..., line N in stuck_in_its_shutdown"
    assert text.index("their Python stacks follow") < text.index("sending SIGKILL")
