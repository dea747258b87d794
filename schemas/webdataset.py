"""WebDataset shards: one sample per example, written by ``WebDatasetWriter`` from each format's
sample function (schemas/continuation.py, separation.py, the concept export). Tar members carry
fixed mtime, owner and mode, so equal inputs give equal bytes.

Reading: ``tar_samples`` is the one tar reader (the trainer's stream, verify and the report
use it): tar members grouped by key, from shards opened with ``open_shards`` (local paths and
``https://`` through webdataset's ``gopen``, ``s3://`` and ``gs://`` through Beam's FileSystems).
"""
import io
import json

import numpy as np

from schemas.shards import OBJECT_STORE_SCHEMES, AtomicFile


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def npy_load(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


class WebDatasetWriter:
    """Writes one tar shard with webdataset's TarWriter onto an atomic Beam file."""

    def __init__(self, path: str, sample_fn):
        """``sample_fn``: record -> the sample dict TarWriter writes (each format's own)."""
        import webdataset
        self.path = path
        self._sample_fn = sample_fn
        self._file = AtomicFile(path, mime_type='application/x-tar')
        self._tar = webdataset.TarWriter(self._file, encoder=False, mtime=0.0, user='', group='', mode=0o444)
        self.examples = 0

    def write(self, example) -> None:
        self._tar.write(self._sample_fn(example))
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
