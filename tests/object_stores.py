"""Object stores for tests: moto's S3 server and a GCS emulator, on 127.0.0.1, started and
stopped by the test that uses them.

Each server keeps its objects in memory; its temporary files go under the test's own
temporary folder (``tempfile.tempdir`` and ``TMPDIR`` point there while it runs). Files are
put and read with the stores' own clients (boto3, google-cloud-storage), not through Beam, so
what the pipeline wrote is checked independently of the code that wrote it.

GCS: Beam's ``gs://`` filesystem builds a ``google.cloud.storage.Client`` for every operation
(``gcsio.create_storage_client``), always asking ``google.auth.default()`` for credentials first.
Without credentials that call probes the GCE metadata server (169.254.169.254) and Beam retries
it with backoff (about 30 s) before connecting anonymously, and Beam has no endpoint option of its
own. The storage client does honour ``STORAGE_EMULATOR_HOST`` as its endpoint, so the emulator is
reached by setting that variable and pointing ``GOOGLE_APPLICATION_CREDENTIALS`` at an application
default credentials file holding an ``authorized_user`` with a static token and a far expiry:
``google.auth.default()`` loads it from the file without any request, the token never needs a
refresh (so Google's token endpoint is never called) and the emulator ignores it.
"""
import contextlib
import hashlib
import json
import os
import socket
import sys
import tempfile
import traceback
from dataclasses import dataclass, field

BUCKET = 'stemforge-test'
_AUDIT = {'active': False, 'foreign': []}


def _audit(event, args):
    """Records every connection or name lookup to anything but 127.0.0.1 while a store runs."""
    if not _AUDIT['active']:
        return
    if event == 'socket.connect':
        address = args[1]
        if isinstance(address, tuple) and address[0] not in ('127.0.0.1', '::1'):
            _AUDIT['foreign'].append((event, address))
    elif event == 'socket.getaddrinfo' and args[0] not in ('127.0.0.1', '::1', b'127.0.0.1', None):
        _AUDIT['foreign'].append((event, args[0], args[1], _caller()))


def _caller() -> str:
    """Where a foreign lookup came from: the innermost frames outside the socket modules."""
    frames = [f for f in traceback.extract_stack()[:-3] if 'socket' not in f.filename]
    return ' <- '.join(f'{f.filename.rsplit("/", 3)[-3:]}:{f.lineno}' for f in reversed(frames[-16:]))


sys.addaudithook(_audit)


@contextlib.contextmanager
def loopback_only():
    """Yields the list of non-loopback connections and lookups made inside the block."""
    _AUDIT['foreign'] = []
    _AUDIT['active'] = True
    try:
        yield _AUDIT['foreign']
    finally:
        _AUDIT['active'] = False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(('127.0.0.1', port)) == 0


@dataclass
class Store:
    """A running store: its ``scheme://bucket`` root, the Beam flags that reach it, and its client."""
    scheme: str
    port: int
    flags: list
    client: object
    env: dict = field(default_factory=dict)

    def url(self, *parts) -> str:
        return '/'.join([f'{self.scheme}://{BUCKET}'] + [p.strip('/') for p in parts])

    def put_tree(self, local_root: str, prefix: str) -> int:
        """Uploads every file under ``local_root`` to ``<bucket>/<prefix>/...``; returns the count."""
        count = 0
        for folder, _, files in os.walk(local_root):
            for name in files:
                path = os.path.join(folder, name)
                key = '/'.join([prefix.strip('/'), os.path.relpath(path, local_root).replace(os.sep, '/')])
                with open(path, 'rb') as f:
                    self._put(key, f.read())
                count += 1
        return count

    def hashes(self, prefix: str) -> dict:
        """{path relative to prefix: sha256} of every object under ``<bucket>/<prefix>/``."""
        return {key[len(prefix.strip('/')) + 1:]: hashlib.sha256(data).hexdigest()
                for key, data in self._objects(prefix.strip('/') + '/')}

    def read(self, key: str) -> bytes:
        return dict(self._objects(key))[key]

    def _put(self, key, data):
        if self.scheme == 's3':
            self.client.put_object(Bucket=BUCKET, Key=key, Body=data)
        else:
            self.client.bucket(BUCKET).blob(key).upload_from_string(data)

    def _objects(self, prefix):
        if self.scheme == 's3':
            pages = self.client.get_paginator('list_objects_v2').paginate(Bucket=BUCKET, Prefix=prefix)
            keys = [o['Key'] for page in pages for o in page.get('Contents', [])]
            return [(k, self.client.get_object(Bucket=BUCKET, Key=k)['Body'].read()) for k in keys]
        return [(b.name, b.download_as_bytes()) for b in self.client.list_blobs(BUCKET, prefix=prefix)]


@contextlib.contextmanager
def _private_temp(monkeypatch, tmp_dir):
    """Points every temporary file of this process (and of workers it starts) into ``tmp_dir``."""
    os.makedirs(tmp_dir, exist_ok=True)
    monkeypatch.setenv('TMPDIR', tmp_dir)
    monkeypatch.setattr(tempfile, 'tempdir', tmp_dir)
    yield


@contextlib.contextmanager
def s3_store(monkeypatch, tmp_dir: str):
    """moto's S3 server on 127.0.0.1 with an empty bucket; stopped (and checked closed) on exit."""
    import boto3
    from moto.server import ThreadedMotoServer
    with _private_temp(monkeypatch, tmp_dir):
        for name, value in {'AWS_EC2_METADATA_DISABLED': 'true', 'AWS_ACCESS_KEY_ID': 'testing',
                            'AWS_SECRET_ACCESS_KEY': 'testing', 'AWS_DEFAULT_REGION': 'us-east-1',
                            'AWS_CONFIG_FILE': os.path.join(tmp_dir, 'aws-config'),
                            'AWS_SHARED_CREDENTIALS_FILE': os.path.join(tmp_dir, 'aws-credentials')}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv('AWS_PROFILE', raising=False)
        server = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False)
        server.start()
        port = server.get_host_and_port()[1]
        try:
            endpoint = f'http://127.0.0.1:{port}'
            client = boto3.client('s3', endpoint_url=endpoint, region_name='us-east-1',
                                  aws_access_key_id='testing', aws_secret_access_key='testing')
            client.create_bucket(Bucket=BUCKET)
            yield Store('s3', port, [f'--s3_endpoint_url={endpoint}', '--s3_access_key_id=testing',
                                     '--s3_secret_access_key=testing', '--s3_region_name=us-east-1'], client)
        finally:
            server.stop()
    assert not port_open(port), 'the S3 server still listens'


@contextlib.contextmanager
def gcs_store(monkeypatch, tmp_dir: str):
    """gcp-storage-emulator on 127.0.0.1 (in memory) with an empty bucket; stopped on exit."""
    import logging
    from gcp_storage_emulator.server import create_server
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage
    with _private_temp(monkeypatch, tmp_dir):
        port = free_port()
        credentials = os.path.join(tmp_dir, 'emulator-adc.json')
        with open(credentials, 'w') as f:
            json.dump({'type': 'authorized_user', 'client_id': 'emulator', 'client_secret': 'emulator',
                       'refresh_token': 'emulator', 'token': 'emulator', 'expiry': '2999-01-01T00:00:00Z'}, f)
        env = {'STORAGE_EMULATOR_HOST': f'http://127.0.0.1:{port}', 'GOOGLE_APPLICATION_CREDENTIALS': credentials,
               'GOOGLE_CLOUD_PROJECT': 'stemforge-test', 'CLOUDSDK_CONFIG': os.path.join(tmp_dir, 'gcloud'),
               'NO_GCE_CHECK': 'true'}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        logging.getLogger('gcp_storage_emulator').setLevel(logging.ERROR)   # one warning per response
        server = create_server('127.0.0.1', port, in_memory=True, default_bucket=BUCKET,
                               data_dir=os.path.join(tmp_dir, 'gcs-emulator'))
        server.start()
        try:
            client = storage.Client(project='stemforge-test', credentials=AnonymousCredentials(),
                                    client_options={'api_endpoint': env['STORAGE_EMULATOR_HOST']})
            yield Store('gs', port, ['--project=stemforge-test'], client, env)
        finally:
            server.stop()
    assert not port_open(port), 'the GCS emulator still listens'
