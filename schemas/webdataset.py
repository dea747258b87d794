"""WebDataset shards: one sample per example, written by ``WebDatasetWriter`` from each format's
sample function (schemas/continuation.py, separation.py, concept.py). Members are written as
webdataset's TarWriter writes them (``<key>.<suffix>`` in sorted order, a streamed tar) with a
fixed mtime, owner and mode, so equal inputs give equal bytes; the writer needs only the standard
library.

Reading: ``tar_samples`` is the one tar reader (the trainer's stream, verify and the report
use it): tar members grouped by key, from shards opened with ``open_shards`` (local paths and
``https://`` through webdataset's ``gopen``, ``s3://`` and ``gs://`` through Beam's FileSystems).
"""
import io
import json
import tarfile

import numpy as np

from schemas.shards import OBJECT_STORE_SCHEMES, AtomicFile


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def npy_load(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def write_sample(tar: tarfile.TarFile, sample: dict) -> None:
    """Adds a sample's members (``__key__`` and bytes values) to a tar opened for streaming."""
    key = sample['__key__']
    for suffix in sorted(k for k in sample if not k.startswith('_')):
        data = sample[suffix]
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ValueError(f'{key}.{suffix}: a sample member must be bytes, not {type(data).__name__}')
        info = tarfile.TarInfo(f'{key}.{suffix}')
        info.size, info.mtime, info.mode, info.uname, info.gname = len(data), 0.0, 0o444, '', ''
        tar.addfile(info, io.BytesIO(data))


class WebDatasetWriter:
    """Writes one tar shard onto an atomic Beam file."""

    def __init__(self, path: str, sample_fn):
        """``sample_fn``: record -> the sample dict (``__key__`` and member suffix -> bytes; each format's own)."""
        self.path = path
        self._sample_fn = sample_fn
        self._file = AtomicFile(path, mime_type='application/x-tar')
        self._tar = tarfile.open(fileobj=self._file, mode='w|')
        self.examples = 0

    def write(self, example) -> None:
        write_sample(self._tar, self._sample_fn(example))
        self.examples += 1

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self._tar.close()
        return self._file.__exit__(exc_type, exc, tb)

    @property
    def output_paths(self):
        return [self.path]

    @property
    def bytes(self):
        return self._file.bytes

    @property
    def sha256(self):
        return self._file.sha256


def open_shard(url: str):
    """A shard's byte stream: s3:// and gs:// through Beam's FileSystems, the rest (local paths,
    https://) through webdataset's gopen."""
    if url.startswith(OBJECT_STORE_SCHEMES):
        from apache_beam.io.filesystems import FileSystems
        return FileSystems.open(url, mime_type='application/x-tar')
    import webdataset
    return webdataset.gopen(url)


def open_shards(shards):
    """{'url'} dicts -> the same with their 'stream' opened."""
    for shard in shards:
        yield dict(shard, stream=open_shard(shard['url']))


def tar_samples(shards):
    """Raw samples of the shards ({'url', 'stream'} dicts): {'__key__', '__url__', '<member
    suffix>': bytes}, one per example, in tar order."""
    from webdataset import tariterators
    return tariterators.group_by_keys(tariterators.tar_file_expander(shards))


def decode_members(raw: dict) -> dict:
    """A raw sample with ``json`` parsed and ``.npy`` members loaded (others stay bytes)."""
    sample = {'__key__': raw['__key__']}
    for key, value in raw.items():
        if key.endswith('.npy') or key == 'npy':
            sample[key] = npy_load(value)
        elif key == 'json':
            sample[key] = json.loads(value)
        elif not key.startswith('__'):
            sample[key] = value
    return sample


def read_samples(path_or_url: str):
    """Yields decoded samples of one shard: {'__key__', 'json' (dict), 'context.npy', ...}."""
    for raw in tar_samples(open_shards([{'url': path_or_url}])):
        yield decode_members(raw)
