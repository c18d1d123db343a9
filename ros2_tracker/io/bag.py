"""rosbag2 bags in MCAP storage: write already-serialized (CDR) messages, read them back; ROS-free.

A bag is a folder ``<bag>/metadata.yaml`` + ``<bag>/<bag name>_0.mcap``, the layout ``ros2 bag
record -s mcap`` makes, so ``ros2 bag info/play`` open what :class:`BagWriter` writes. The MCAP file
follows rosbag2's conventions: profile ``ros2``, message encoding ``cdr``, one ``ros2msg`` schema per
message type holding its full definition (dependencies included, generated with ``rosbags``' Kilted
type store plus ``msg/*.msg`` files found in the repository and in ``share/<package>/msg`` of the
install prefixes), and per channel the ``offered_qos_profiles`` and ``topic_type_hash``.

Writing uses the ``mcap`` package (it takes raw bytes and can end a chunk on demand): messages go
into chunks that are written out when full and, at the latest, ``flush_interval_s`` after their first
message (and on :meth:`BagWriter.flush`), so a process killed abruptly loses at most that window.
:meth:`BagWriter.close` writes the summary and ``metadata.yaml``; without them (a crash) the
``.mcap`` is still read back by :func:`read_bag`, which scans records in file order and stops with a
:class:`BagDamageWarning` at the first truncated or corrupt record (``ros2 bag reindex`` recreates
``metadata.yaml`` for ROS tools).

Nothing here imports rclpy, except :func:`read_bag_typed` and :func:`deserialized` inside their bodies.
"""

from __future__ import annotations

import importlib
import io
import os
import re
import struct
import sys
import time
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from ros2_tracker.io.files import write_atomically

__all__ = [
    "BagDamageWarning",
    "BagError",
    "BagMessage",
    "BagTopic",
    "BagWriter",
    "MessageDefinitions",
    "bag_files",
    "bag_topics",
    "cdr_header_stamp_ns",
    "deserialized",
    "qos_profile_dict",
    "read_bag",
    "read_bag_typed",
]

ROSBAG2_VERSION = 9
"""rosbag2 metadata version written (Jazzy and Kilted read 9)."""

_MCAP_SUFFIX = ".mcap"


class BagError(RuntimeError):
    """A bag cannot be created, opened or read at all; the message names the path and the reason."""


class BagDamageWarning(UserWarning):
    """Part of a bag could not be read (truncated or corrupt file); messages before it were returned."""


class BagMessage(NamedTuple):
    """One serialized message of a bag.

    Attributes:
        topic: topic name as recorded (absolute, e.g. ``/image``).
        msgtype: ROS 2 type name, ``package/msg/Name``.
        log_time_ns: time the recorder received it [ns since the epoch of the recording clock].
        data: the message, CDR-serialized (as rclpy's ``serialize_message`` makes it).
        publish_time_ns: time it was published when known, else ``log_time_ns`` [ns].
    """

    topic: str
    msgtype: str
    log_time_ns: int
    data: bytes
    publish_time_ns: int = 0


@dataclass
class BagTopic:
    """A topic of a bag.

    Attributes:
        name: topic name.
        msgtype: ``package/msg/Name``.
        offered_qos_profiles: QoS of its publishers, rosbag2 v9 dicts (see :func:`qos_profile_dict`).
        type_hash: ``RIHS01_...`` type description hash; computed from the definition when empty.
        message_count: messages written/read.
    """

    name: str
    msgtype: str
    offered_qos_profiles: list[dict[str, Any]] = field(default_factory=list)
    type_hash: str = ""
    message_count: int = 0


def qos_profile_dict(*, reliability: str = "reliable", durability: str = "volatile",
                     history: str = "keep_last", depth: int = 10,
                     liveliness: str = "automatic") -> dict[str, Any]:
    """One offered QoS profile in rosbag2's v9 ``metadata.yaml`` form (names in lower case).

    Args:
        reliability: ``reliable`` | ``best_effort`` | ``system_default``.
        durability: ``volatile`` | ``transient_local`` | ``system_default``.
        history: ``keep_last`` | ``keep_all`` | ``system_default``.
        depth: history depth (messages).
        liveliness: ``automatic`` | ``manual_by_topic`` | ``system_default``.
    """
    infinite = {"sec": 2147483647, "nsec": 4294967295}
    return {"history": history, "depth": int(depth), "reliability": reliability, "durability": durability,
            "deadline": dict(infinite), "lifespan": dict(infinite), "liveliness": liveliness,
            "liveliness_lease_duration": dict(infinite), "avoid_ros_namespace_conventions": False}


def cdr_header_stamp_ns(data: bytes | memoryview) -> int:
    """``header.stamp`` [ns] of a CDR-serialized message whose first field is ``std_msgs/Header``.

    True of ``sensor_msgs/Image``, ``CompressedImage``, ``ros2_tracker/Detection2DArray`` and
    ``TrackArray``: the stamp is then ``int32 sec, uint32 nanosec`` right after the 4-byte
    encapsulation header, in the byte order that header names.

    Raises:
        ValueError: too short, or an encapsulation other than plain CDR.
    """
    if len(data) < 12:
        raise ValueError(f"serialized message of {len(data)} bytes is too short to hold a header stamp")
    kind = data[1]
    if kind not in (0, 1):
        raise ValueError(f"unsupported CDR encapsulation 0x{data[0]:02x}{data[1]:02x}")
    sec, nanosec = struct.unpack_from("<iI" if kind == 1 else ">iI", data, 4)
    return sec * 1_000_000_000 + nanosec


# --------------------------------------------------------------------------------------------------
# Message definitions (schemas)


class MessageDefinitions:
    """Full ``ros2msg`` definitions and RIHS01 hashes of message types, for bag schemas.

    Types come from ``rosbags``' ROS 2 Kilted type store; others (ours, or any installed package's)
    are read from ``<dir>/<package>/msg/<Name>.msg`` under the given search directories, the
    repository's ``msg/`` (for ``ros2_tracker``) and ``share/`` of ``AMENT_PREFIX_PATH`` and
    ``sys.prefix``. The type store is built on first use (about 0.1 s).

    Args:
        extra_share_dirs: more directories laid out like ``share/`` to search first.
    """

    def __init__(self, extra_share_dirs: Iterable[str | Path] = ()) -> None:
        self._extra = [Path(p) for p in extra_share_dirs]
        self._store: Any = None
        self._cache: dict[str, tuple[str, str]] = {}

    def definition(self, msgtype: str) -> tuple[str, str]:
        """``(ros2msg text, RIHS01 hash)`` of ``package/msg/Name``; ``("", "")`` when it is not found."""
        if msgtype not in self._cache:
            self._cache[msgtype] = self._generate(msgtype)
        return self._cache[msgtype]

    def _generate(self, msgtype: str) -> tuple[str, str]:
        from rosbags.typesys import Stores, get_typestore

        if self._store is None:
            self._store = get_typestore(Stores.ROS2_KILTED)
        for _ in range(64):  # each round registers one missing dependency
            try:
                text, _ = self._store.generate_msgdef(msgtype, ros_version=2)
                return text, self._store.hash_rihs01(msgtype)
            except Exception as exc:  # rosbags raises several types for unknown names
                missing = _missing_type(exc, msgtype, self._store)
                if missing is None or not self._register(missing):
                    return "", ""
        return "", ""

    def _register(self, msgtype: str) -> bool:
        from rosbags.typesys import get_types_from_msg

        path = self._find_msg_file(msgtype)
        if path is None:
            return False
        try:
            self._store.register(get_types_from_msg(path.read_text(), msgtype))
        except Exception:  # a malformed .msg file: no definition, not a crash
            return False
        return True

    def _find_msg_file(self, msgtype: str) -> Path | None:
        parts = msgtype.split("/")
        if len(parts) != 3:
            return None
        pkg, sub, name = parts
        roots = list(self._extra)
        if pkg == "ros2_tracker":
            roots.append(Path(__file__).resolve().parents[2])  # repository checkout: <repo>/msg
        prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
        roots += [Path(p) / "share" for p in [*prefixes, sys.prefix]]
        for root in roots:
            for cand in (root / pkg / sub / f"{name}.msg", root / sub / f"{name}.msg"):
                if cand.is_file():
                    return cand
        return None


def _missing_type(exc: Exception, msgtype: str, store: Any) -> str | None:
    """The type name a failed ``generate_msgdef`` lacks: ``msgtype`` itself or a dependency."""
    if msgtype not in store.fielddefs:
        return msgtype
    for name in re.findall(r"'([^'\s]+)'", str(exc)):  # "Type 'pkg/msg/Name' is unknown."
        if name.count("/") == 1:
            name = name.replace("/", "/msg/")
        if name.count("/") == 2 and name not in store.fielddefs:
            return name
    return None


# --------------------------------------------------------------------------------------------------
# Writing


class BagWriter:
    """Write a rosbag2 MCAP bag from already-serialized messages, flushing as it goes.

    Usage::

        with BagWriter("out/run1", {"/image": "sensor_msgs/msg/Image"}) as bag:
            bag.write("/image", cdr_bytes, log_time_ns)

    Topics can be added after opening (:meth:`add_topic`), e.g. as a recorder discovers them.
    Not thread-safe: call it from one thread (or hold a lock).

    Args:
        path: bag folder to create; it must not exist or be an empty folder.
        topics_and_types: ``{topic: msgtype}``, or :class:`BagTopic` items, or ``(topic, msgtype)`` pairs.
        chunk_size: a chunk is written once its uncompressed size exceeds this [bytes].
        flush_interval_s: a chunk is written at the latest this long after its first message [s]
            (checked on each :meth:`write` and :meth:`flush_if_due`); 0 = after every message.
        compression: chunk compression, ``none`` | ``zstd`` | ``lz4`` (``none`` costs no CPU).
        definitions: where message definitions come from (a shared one saves rebuilding the store).

    Raises:
        BagError: the folder exists and is not empty, or cannot be created.
    """

    def __init__(self, path: str | Path, topics_and_types: Mapping[str, str] | Iterable[Any] = (), *,
                 chunk_size: int = 1 << 20, flush_interval_s: float = 0.5, compression: str = "none",
                 definitions: MessageDefinitions | None = None) -> None:
        from mcap.writer import CompressionType, Writer

        comp = {"none": CompressionType.NONE, "zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4}
        if compression not in comp:
            raise BagError(f"compression must be one of {', '.join(comp)}, got {compression!r}")
        if flush_interval_s < 0:
            raise BagError(f"flush_interval_s must be >= 0, got {flush_interval_s}")
        self.path = Path(path)
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise BagError(f"{self.path}: exists and is not an empty folder; not overwriting a bag")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self.mcap_path = self.path / f"{self.path.name}_0{_MCAP_SUFFIX}"
            self._file = self.mcap_path.open("xb")
        except OSError as exc:
            raise BagError(f"{self.path}: cannot create the bag: {exc}") from None
        self._writer = Writer(self._file, chunk_size=chunk_size, compression=comp[compression])
        self._writer.start(profile="ros2", library="ros2_tracker BagWriter (mcap)")
        self._compression = compression
        self._flush_interval_s = flush_interval_s
        self._defs = definitions or MessageDefinitions()
        self._topics: dict[str, BagTopic] = {}
        self._channels: dict[str, int] = {}
        self._schemas: dict[str, int] = {}
        self._unflushed_since: float | None = None
        self._start_ns: int | None = None
        self._end_ns = 0
        self.closed = False
        for topic in _as_topics(topics_and_types):
            self.add_topic(topic.name, topic.msgtype, offered_qos_profiles=topic.offered_qos_profiles,
                           type_hash=topic.type_hash)

    @property
    def topics(self) -> dict[str, BagTopic]:
        """Topics written so far, by name (with their message counts)."""
        return dict(self._topics)

    @property
    def message_count(self) -> int:
        """Messages written so far."""
        return sum(t.message_count for t in self._topics.values())

    def add_topic(self, topic: str, msgtype: str, *, offered_qos_profiles: list[dict[str, Any]] | None = None,
                  type_hash: str = "") -> None:
        """Register a topic (no-op if already registered with the same type).

        Raises:
            BagError: the topic is already registered with another type, or the bag is closed.
        """
        self._check_open()
        if topic in self._topics:
            if self._topics[topic].msgtype != msgtype:
                raise BagError(f"{topic}: already recorded as {self._topics[topic].msgtype}, not {msgtype}")
            return
        text, rihs01 = self._defs.definition(msgtype)
        if not text:
            warnings.warn(f"{msgtype}: message definition not found; the bag schema of {topic} is empty "
                          "(ros2 bag play still works, schema-decoding tools will not)", stacklevel=2)
        if msgtype not in self._schemas:
            self._schemas[msgtype] = self._writer.register_schema(
                name=msgtype, encoding="ros2msg" if text else "", data=text.encode())
        info = BagTopic(topic, msgtype, list(offered_qos_profiles or []), type_hash or rihs01)
        meta = {"offered_qos_profiles": _yaml_dump(info.offered_qos_profiles) if info.offered_qos_profiles
                else "", "topic_type_hash": info.type_hash}
        self._channels[topic] = self._writer.register_channel(
            topic=topic, message_encoding="cdr", schema_id=self._schemas[msgtype], metadata=meta)
        self._topics[topic] = info

    def write(self, topic: str, data: bytes | memoryview, log_time_ns: int,
              publish_time_ns: int | None = None) -> None:
        """Append one serialized message.

        Args:
            topic: a registered topic.
            data: CDR bytes.
            log_time_ns: receive time [ns].
            publish_time_ns: publish (source) time [ns]; ``log_time_ns`` when None or 0.

        Raises:
            BagError: unknown topic or closed bag.
        """
        self._check_open()
        channel = self._channels.get(topic)
        if channel is None:
            raise BagError(f"{topic}: not a topic of this bag (add_topic first)")
        self._writer.add_message(channel_id=channel, log_time=int(log_time_ns), data=bytes(data),
                                 publish_time=int(publish_time_ns or log_time_ns))
        self._topics[topic].message_count += 1
        self._start_ns = log_time_ns if self._start_ns is None else min(self._start_ns, log_time_ns)
        self._end_ns = max(self._end_ns, log_time_ns)
        if self._unflushed_since is None:
            self._unflushed_since = time.monotonic()
        self.flush_if_due()

    def flush_if_due(self) -> bool:
        """Write the open chunk if its first message is older than ``flush_interval_s``; True if it did."""
        if self.closed or self._unflushed_since is None:
            return False
        if time.monotonic() - self._unflushed_since < self._flush_interval_s:
            return False
        self.flush()
        return True

    def flush(self) -> None:
        """Write the open chunk and flush the file to the OS (no fsync)."""
        self._check_open()
        self._writer.flush()
        self._unflushed_since = None

    def close(self) -> None:
        """Write the summary (MCAP index, statistics) and ``metadata.yaml``; idempotent."""
        if self.closed:
            return
        self.closed = True
        meta_text = _yaml_dump(self._metadata())
        try:
            self._writer.add_metadata("rosbag2", {"serialized_metadata": _yaml_dump(
                self._metadata()["rosbag2_bagfile_information"])})
            self._writer.finish()
        finally:
            self._file.close()
        write_atomically(self.path / "metadata.yaml", meta_text.encode())

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self.closed:
            raise BagError(f"{self.path}: bag is closed")

    def _metadata(self) -> dict[str, Any]:
        start = self._start_ns or 0
        duration = max(0, self._end_ns - start) if self._start_ns is not None else 0
        count = self.message_count
        name = self.mcap_path.name
        return {"rosbag2_bagfile_information": {
            "version": ROSBAG2_VERSION,
            "storage_identifier": "mcap",
            "relative_file_paths": [name],
            "duration": {"nanoseconds": duration},
            "starting_time": {"nanoseconds_since_epoch": start},
            "message_count": count,
            "topics_with_message_count": [
                {"topic_metadata": {"name": t.name, "type": t.msgtype, "serialization_format": "cdr",
                                    "offered_qos_profiles": t.offered_qos_profiles,
                                    "type_description_hash": t.type_hash},
                 "message_count": t.message_count}
                for t in self._topics.values()],
            "compression_format": "",
            "compression_mode": "",
            "files": [{"path": name, "starting_time": {"nanoseconds_since_epoch": start},
                       "duration": {"nanoseconds": duration}, "message_count": count}],
            "custom_data": {"writer": "ros2_tracker", "chunk_compression": self._compression},
            "ros_distro": "kilted",
        }}


def _as_topics(items: Mapping[str, str] | Iterable[Any]) -> list[BagTopic]:
    if isinstance(items, Mapping):
        return [BagTopic(k, v) for k, v in items.items()]
    out = []
    for item in items:
        out.append(item if isinstance(item, BagTopic) else BagTopic(str(item[0]), str(item[1])))
    return out


def _yaml_dump(obj: Any) -> str:
    return yaml.safe_dump(obj, default_flow_style=False, sort_keys=False)


# --------------------------------------------------------------------------------------------------
# Reading


def bag_files(path: str | Path) -> list[Path]:
    """The ``.mcap`` files of a bag folder (in ``metadata.yaml`` order, else sorted), or ``[path]``.

    Raises:
        BagError: missing path, a folder with no ``.mcap`` file, or a storage other than MCAP.
    """
    p = Path(path)
    if p.is_file():
        if p.suffix == ".db3":
            raise BagError(f"{p}: sqlite3 bags are not supported; convert to MCAP "
                           "(ros2 bag convert, or rosbags-convert)")
        return [p]
    if not p.is_dir():
        raise BagError(f"{p}: no such bag (expected a rosbag2 folder or an .mcap file)")
    meta = _read_metadata(p)
    if meta is not None:
        storage = meta.get("storage_identifier", "mcap")
        if storage != "mcap":
            raise BagError(f"{p}: storage {storage!r} is not supported (only MCAP)")
        if meta.get("compression_mode") == "file":
            raise BagError(f"{p}: file-compressed bags are not supported; decompress first")
        listed = [p / f for f in _meta_list(meta, "relative_file_paths", str)]
        present = [f for f in listed if f.is_file()]
        if present:
            return present
    found = sorted(p.glob(f"*{_MCAP_SUFFIX}"))
    if not found:
        extra = " (only sqlite3 .db3 files: convert to MCAP)" if any(p.glob("*.db3")) else ""
        raise BagError(f"{p}: no .mcap file in the bag folder{extra}")
    return found


def _read_metadata(folder: Path) -> dict[str, Any] | None:
    f = folder / "metadata.yaml"
    if not f.is_file():
        return None
    try:
        doc = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError, OSError):  # damaged: the files' own records are read instead
        return None
    info = doc.get("rosbag2_bagfile_information") if isinstance(doc, dict) else None
    return info if isinstance(info, dict) else None


def _meta_list(meta: dict[str, Any], key: str, kind: type) -> list[Any]:
    """The ``kind`` entries of a metadata.yaml list field (none when the field is not a list)."""
    value = meta.get(key, [])
    return [v for v in value if isinstance(v, kind)] if isinstance(value, list) else []


def bag_topics(path: str | Path) -> dict[str, str]:
    """``{topic: msgtype}`` of a bag, from ``metadata.yaml`` or else from the files' channel records.

    Reading channels needs a scan of files without an index (a crashed recording); damage only warns.
    """
    p = Path(path)
    meta = _read_metadata(p) if p.is_dir() else None
    if meta is not None:
        out = {}
        for t in _meta_list(meta, "topics_with_message_count", dict):
            tm = t.get("topic_metadata", {})
            if isinstance(tm, dict) and isinstance(tm.get("name"), str) and isinstance(tm.get("type"), str):
                out[tm["name"]] = tm["type"]
        if out:
            return out
    out = {}
    for f in bag_files(p):
        out.update(_scan_channels(f))
    return out


def _scan_channels(path: Path) -> dict[str, str]:
    from mcap.reader import make_reader

    try:
        with path.open("rb") as fh:
            summary = make_reader(fh).get_summary()
        if summary is not None:
            return {c.topic: summary.schemas[c.schema_id].name if c.schema_id in summary.schemas else ""
                    for c in summary.channels.values()}
    except Exception:  # no usable summary (a crashed recording): scan records
        pass
    out: dict[str, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BagDamageWarning)
        for topic, msgtype in _iter_records(path, on_damage=None, channels_only=True):
            out[topic] = msgtype
    return out


def read_bag(path: str | Path, topics: Iterable[str] | None = None, *,
             on_damage: Callable[[str], None] | None = None) -> Iterator[BagMessage]:
    """Serialized messages of a bag folder or a bare ``.mcap`` file, in file order (= recording order).

    A truncated or corrupt file (e.g. a recorder killed with SIGKILL, no summary, a half-written last
    chunk) is read up to the damage; what follows is reported once per file through ``on_damage``
    (default: a :class:`BagDamageWarning`) and skipped. Of a chunk that the end of the file cuts short,
    the complete messages are read (of a compressed chunk, those in its whole compressed blocks); those of
    a corrupt chunk are lost.

    Args:
        path: bag folder (``metadata.yaml`` + ``*.mcap``) or ``.mcap`` file.
        topics: only these topics (all when None).
        on_damage: called with a one-line description of the damage.

    Yields:
        :class:`BagMessage` ``(topic, msgtype, log_time_ns, data, publish_time_ns)``.

    Raises:
        BagError: the bag does not exist or a file is not MCAP at all.
    """
    wanted = set(topics) if topics is not None else None
    for f in bag_files(path):
        for msg in _iter_records(f, on_damage=on_damage):
            if wanted is None or msg.topic in wanted:
                yield msg


def _iter_records(path: Path, *, on_damage: Callable[[str], None] | None,
                  channels_only: bool = False) -> Iterator[Any]:
    """Messages (or, with ``channels_only``, ``(topic, msgtype)`` per channel) of one file, in order."""
    from mcap.records import Footer, Message
    from mcap.stream_reader import StreamReader

    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, str]] = {}
    stored: list[int] = []  # the message count of the summary's statistics (a closed file)
    count = boundary = 0  # boundary: file offset after the last complete top-level record
    fh, size = _open_file(path)
    with fh:
        try:
            for rec in StreamReader(fh, validate_crcs=True, record_size_limit=1 << 32).records:
                boundary = fh.tell()
                if isinstance(rec, Message):
                    topic_type = channels.get(rec.channel_id)
                    if channels_only or topic_type is None:
                        continue  # (a message before its channel is not valid MCAP: skipped)
                    count += 1
                    yield BagMessage(*topic_type, rec.log_time, rec.data, rec.publish_time or rec.log_time)
                elif isinstance(rec, Footer):
                    break
                elif _index_record(rec, schemas, channels, stored) and channels_only:
                    yield channels[rec.id]
        except _read_errors() as exc:
            if boundary == 0:
                raise BagError(f"{path}: empty or not an MCAP file ({type(exc).__name__}: {exc})") from None
            known = set(channels)
            salvaged = list(_salvage_chunk(fh, boundary, size, schemas, channels))
            if channels_only:  # the channels the cut chunk names (a one-chunk recording: all of them)
                yield from (channels[c] for c in channels if c not in known)
                return
            yield from salvaged
            text = _damage_text(path, exc, boundary, size, count + len(salvaged))
            _report(on_damage, text + (f" ({len(salvaged)} of them from the cut chunk)" if salvaged else ""))
            return
    # a damaged opcode makes the stream skip that record (as the MCAP spec allows for unknown ones), and a
    # whole chunk of messages with it: the summary's count shows the loss
    if stored and not channels_only and count < stored[-1]:
        _report(on_damage, f"{path}: {stored[-1] - count} of {stored[-1]} messages could not be read (a "
                           "damaged record was skipped)")


def _salvage_chunk(fh: Any, offset: int, size: int, schemas: dict[int, str],
                   channels: dict[int, tuple[str, str]]) -> Iterator[BagMessage]:
    """The complete messages of a chunk at ``offset`` that the end of the file cuts short (a recorder
    killed while writing it): its records are read up to the cut (of a zstd or lz4 chunk, as far as its
    whole compressed blocks reach). A chunk that fits in the file is damaged, not cut (its CRC failed):
    nothing is taken from it."""
    from mcap.records import Message
    from mcap.stream_reader import StreamReader

    fh.seek(offset)
    head = fh.read(9 + 28 + 4)
    if len(head) < 41 or head[0] != 0x06:  # 0x06: a Chunk record
        return
    if offset + 9 + struct.unpack_from("<Q", head, 1)[0] <= size:  # it fits: damaged, not cut short
        return
    name = fh.read(min(struct.unpack_from("<I", head, 37)[0], 16))
    size_field = fh.read(8)
    if len(size_field) < 8:  # cut inside the chunk's header
        return
    records = _decompressed_prefix(name, fh.read(min(struct.unpack("<Q", size_field)[0], size - fh.tell())))
    try:
        for rec in StreamReader(io.BytesIO(records), skip_magic=True, validate_crcs=False).records:
            if isinstance(rec, Message):
                topic_type = channels.get(rec.channel_id)
                if topic_type is not None:
                    yield BagMessage(*topic_type, rec.log_time, rec.data, rec.publish_time or rec.log_time)
            else:
                _index_record(rec, schemas, channels, [])
    except _read_errors():
        return  # the cut record: what came before it was yielded


def _decompressed_prefix(compression: bytes, data: bytes) -> bytes:
    """What the first bytes ``data`` of a chunk's records, compressed as ``compression`` says (b"", b"zstd",
    b"lz4"), decompress to: streaming decoders give every whole block before the cut. Empty for another
    compression, a missing decompressor or data it rejects."""
    try:
        if compression == b"":
            return data
        if compression == b"zstd":
            import zstandard

            return zstandard.ZstdDecompressor().decompressobj().decompress(data)
        if compression == b"lz4":
            import lz4.frame

            return lz4.frame.LZ4FrameDecompressor().decompress(data)
    except (ImportError, *_read_errors()):
        pass
    return b""


def _index_record(rec: Any, schemas: dict[int, str], channels: dict[int, tuple[str, str]],
                  stored: list[int]) -> bool:
    """Note a schema, channel or statistics record; True for a channel (``channels[rec.id]`` is new)."""
    from mcap.records import Channel, Schema, Statistics

    if isinstance(rec, Schema):
        schemas[rec.id] = rec.name
    elif isinstance(rec, Channel):
        channels[rec.id] = (rec.topic, schemas.get(rec.schema_id, ""))
        return True
    elif isinstance(rec, Statistics):
        stored.append(rec.message_count)
    return False


def _open_file(path: Path) -> tuple[Any, int]:
    try:
        return path.open("rb"), path.stat().st_size
    except OSError as exc:
        raise BagError(f"{path}: cannot open: {exc}") from None


def _read_errors() -> tuple[type[BaseException], ...]:
    """What reading a damaged MCAP file raises: mcap's errors (end of file, CRC mismatch, bad magic,
    record too long), struct/zlib errors, errors of decompressors fed garbage, and what a damaged length
    or index raises (a read of 2**63 bytes: OverflowError)."""
    from mcap.exceptions import McapError

    errors: list[type[BaseException]] = [McapError, struct.error, zlib.error, ValueError, RuntimeError,
                                         MemoryError, EOFError, OverflowError, IndexError, KeyError]
    try:
        import zstandard

        errors.append(zstandard.ZstdError)
    except ImportError:
        pass
    return tuple(errors)


def _damage_text(path: Path, exc: Exception, boundary: int, size: int, count: int) -> str:
    """One line saying where a file stopped being readable and what was recovered."""
    from mcap.exceptions import EndOfFile

    ended = isinstance(exc, (EndOfFile, struct.error))  # a record cut short (struct: a cut length field)
    if ended and boundary >= size:
        return (f"{path}: no MCAP summary/footer: the recording was interrupted before the bag was "
                f"closed; all {count} messages written were read (`ros2 bag reindex` rebuilds "
                "metadata.yaml for ROS tools)")
    if ended:
        return (f"{path}: truncated: the last {size - boundary} bytes (from byte {boundary} of {size}) "
                f"are an incomplete record and were skipped; read {count} messages before it "
                "(the recording was probably interrupted)")
    return (f"{path}: corrupt record at byte {boundary} of {size} ({type(exc).__name__}: {exc}); read "
            f"{count} messages before it, the rest of the file is skipped")


def _report(on_damage: Callable[[str], None] | None, text: str) -> None:
    if on_damage is None:
        warnings.warn(text, BagDamageWarning, stacklevel=3)
    else:
        on_damage(text)


def message_class(msgtype: str) -> Any:
    """The rclpy message class of ``package/msg/Name`` (imports rclpy-generated modules).

    Raises:
        BagError: the package's Python bindings are not installed.
    """
    try:
        from rosidl_runtime_py.utilities import get_message

        return get_message(msgtype)
    except ImportError:
        pass
    except (AttributeError, ModuleNotFoundError, ValueError) as exc:
        raise BagError(f"{msgtype}: message type not available: {exc}") from None
    parts = msgtype.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3:
        raise BagError(f"{msgtype!r}: not a message type name (package/msg/Name)")
    try:
        return getattr(importlib.import_module(f"{parts[0]}.{parts[1]}"), parts[2])
    except (ImportError, AttributeError) as exc:
        raise BagError(f"{msgtype}: message type not available (are its Python bindings installed?): "
                       f"{exc}") from None


def read_bag_typed(path: str | Path, topics: Iterable[str] | None = None, *,
                   on_damage: Callable[[str], None] | None = None) -> Iterator[tuple[str, str, int, Any]]:
    """Like :func:`read_bag` but deserialised with rclpy: ``(topic, msgtype, log_time_ns, message)``.

    Raises:
        BagError: as :func:`read_bag`, or a type whose Python bindings are missing.
    """
    for msg, typed, error in deserialized(read_bag(path, topics, on_damage=on_damage)):
        if error is not None:
            raise error
        yield msg.topic, msg.msgtype, msg.log_time_ns, typed


def deserialized(messages: Iterable[BagMessage]) -> Iterator[tuple[BagMessage, Any, Exception | None]]:
    """Each serialized message with its rclpy message object, or with None and the error that stopped
    its deserialisation (damaged CDR: rclpy's RMWError), so a reader can skip one message and go on.

    Raises:
        BagError: a type whose Python bindings are missing.
    """
    from rclpy.serialization import deserialize_message

    classes: dict[str, Any] = {}
    for msg in messages:
        cls = classes.get(msg.msgtype)
        if cls is None:
            cls = classes[msg.msgtype] = message_class(msg.msgtype)
        try:
            typed, error = deserialize_message(msg.data, cls), None
        except (RuntimeError, ValueError, TypeError) as exc:
            typed, error = None, exc
        yield msg, typed, error
