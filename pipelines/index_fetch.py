"""A local copy of a descriptors index kept in object storage (s3://, gs://), for queries:
the manifest and the index files it lists, fetched only when the cached copy's sha256 differs."""
import hashlib
import json
import os

from schemas.descriptor_index import INDEX_EXPORT, IndexUnusable


def fetch_index(url: str, cache_root: str = None) -> str:
    """A local copy of the descriptors dataset at ``url`` (``s3://``, ``gs://``: Beam's FileSystems):
    its manifest and the index files the manifest lists, each downloaded only when the cached copy's
    sha256 differs from the manifest's. Returns the local folder.

    Raises:
        IndexUnusable: no manifest at ``url``, or a listed file that cannot be read.
    """
    from apache_beam.io.filesystems import FileSystems
    from transforms.cache import cache_dir
    local = os.path.join(cache_root or cache_dir(), 'query-index', hashlib.sha256(url.encode()).hexdigest()[:16])
    url = url.rstrip('/')

    def read(path: str, what: str) -> bytes:
        try:
            with FileSystems.open(f'{url}/{path}', compression_type='uncompressed') as handle:
                return handle.read()
        except Exception as e:   # each filesystem raises its own errors (IOError, BeamIOError, client errors)
            raise IndexUnusable(f'{what} unreadable: {url}/{path} ({type(e).__name__}: {e})') from None

    manifest = read('manifest.json', 'manifest')
    try:
        entries = json.loads(manifest).get('exports', {}).get(INDEX_EXPORT, {}).get('paths', [])
    except ValueError as e:
        raise IndexUnusable(f'manifest unreadable: {url}/manifest.json ({e})') from None
    for entry in entries:
        target = os.path.join(local, *entry['path'].split('/'))
        if not os.path.isfile(target) or _sha256(target) != entry.get('sha256'):
            _write_new(target, read(entry['path'], 'index file'))
    _write_new(os.path.join(local, 'manifest.json'), manifest)
    return local


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _write_new(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + '.part', 'wb') as handle:
        handle.write(data)
    os.replace(path + '.part', path)
