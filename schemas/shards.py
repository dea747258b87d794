"""Shard names and atomic, hashed writes through Beam's FileSystems (local, s3://, gs://).

A file appears under its final name only when complete: data goes to a temporary
name beside it and is renamed at the end, as Beam's own file sinks do.
"""
import hashlib
import json
import uuid
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems

from schemas.records import DictRecord

SHARD_PATTERNS = {
    'webdataset': 'webdataset/{split}/{split}-{index:06d}.tar',
    'parquet': 'parquet/{split}/part-{index:05d}.parquet',
    # --task=descriptors: the table, hive-partitioned by split, and the search index beside it
    'descriptors': 'descriptors/split={split}/part-{index:05d}.parquet',
    'descriptor-index': 'descriptor-index/{split}/part-{index:05d}.npy',
    'descriptor-blocks': 'descriptor-index/{split}/part-{index:05d}.blocks.json',
}


def shard_path(fmt: str, split: str, index: int, window: str = None) -> str:
    """The shard's path relative to the dataset root; the one place names are made. A streaming
    build's ``window`` goes in front of the file name (``<window>-train-000000.tar``)."""
    path = SHARD_PATTERNS[fmt].format(split=split, index=index)
    if window is None:
        return path
    folder, name = path.rsplit('/', 1)
    return f'{folder}/{window}-{name}'


def join(root: str, relative: str) -> str:
    return FileSystems.join(root.rstrip('/'), *relative.split('/'))


OBJECT_STORE_SCHEMES = ('s3://', 'gs://')     # paths Beam's FileSystems open (not local, not https)
WORK_DIR = '_work'      # a build's working files (plans, codes, shard stats, run state) under its output


def work_path(root: str, *parts) -> str:
    """A working file of the build writing ``root``."""
    return join(root, '/'.join((WORK_DIR,) + parts))


@dataclass(frozen=True)
class ShardStats(DictRecord):
    split: str
    format: str
    path: str            # relative to the dataset root
    examples: int
    bytes: int
    sha256: str


class AtomicFile:
    """A write-only file that counts and hashes what it receives and is renamed into
    place on a clean close; on an error the temporary file is deleted."""

    def __init__(self, path: str, mime_type: str = 'application/octet-stream'):
        self.path = path
        self.tmp_path = f'{path}.tmp-{uuid.uuid4().hex}'
        self._mime_type = mime_type
        self._handle = None      # opened on the first bytes: see _create_empty
        self._sha = hashlib.sha256()
        self.bytes = 0

    def write(self, data) -> int:
        if not len(data):
            return 0
        if self._handle is None:
            self._handle = FileSystems.create(self.tmp_path, mime_type=self._mime_type)
        self._sha.update(data)
        self.bytes += len(data)
        self._handle.write(data)
        return len(data)

    def flush(self):
        pass

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._handle is None:
            if exc_type is not None:
                return False
            _create_empty(self.tmp_path, self._mime_type)
        else:
            self._handle.close()
        if exc_type is not None:
            FileSystems.delete([self.tmp_path])
            return False
        if FileSystems.exists(self.path):
            FileSystems.delete([self.path])
        FileSystems.rename([self.tmp_path], [self.path])
        return False


def _create_empty(path: str, mime_type: str) -> None:
    """Creates an empty file. Beam's S3 writer always finishes a multipart upload, which S3 refuses
    without a part, so it cannot write an empty object (errors.jsonl of a run without errors): on
    s3:// the object is put in one request through Beam's own S3 client, made from the pipeline's
    S3 options (endpoint, keys) that Beam's S3 filesystem holds."""
    if not path.startswith('s3://'):
        FileSystems.create(path, mime_type=mime_type).close()
        return
    from apache_beam.io.aws import s3io
    bucket, key = s3io.parse_s3_path(path)
    client = s3io.S3IO(options=FileSystems.get_filesystem(path)._options).client
    client.client.put_object(Bucket=bucket, Key=key, Body=b'', ContentType=mime_type)


def write_atomic(path: str, data: bytes) -> tuple:
    """Writes ``data`` atomically; returns (bytes, sha256)."""
    with AtomicFile(path) as handle:
        handle.write(data)
    return handle.bytes, handle.sha256


def plan_document(waveforms: dict, examples: int) -> bytes:
    """A song's plan file in the work folder (the progress line reads it): {waveform id: windows
    to encode} and the number of examples they make."""
    return json.dumps({'waveforms': waveforms, 'examples': int(examples)}, sort_keys=True).encode('utf-8')
