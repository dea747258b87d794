"""Resumable, idempotent runs: the options fingerprint, the work folder and what it holds.

While a build runs, ``<output>/_work/`` holds ``run.json`` (the fingerprint of the options
that shape the dataset), the codes of every waveform encoded so far (``codes/<id>.npz``) and
a stats file per completed shard (``shards/...json``). A rerun with ``--resume`` reuses them:
encoded waveforms are not encoded again and complete shards are not rewritten, so the
result is byte-identical to an uninterrupted run. The folder is removed once the manifest is
written. A run with other options into a used output is refused unless ``--overwrite``.
"""
import json

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from schemas.card import CARD_NAME
from schemas.ids import stable_id
from schemas.manifest import COUNTERS_NAME, MANIFEST_NAME, read_manifest
from schemas.shards import WORK_DIR, join, work_path, write_atomic
from schemas.windows import PARTS_DIR
from transforms.tasks.registry import TASKS

# How a run is carried out, not what it builds: left out of the manifest's options.
RUN_CONTROL = ('resume', 'overwrite', 'report', 'progress_seconds',
               'streaming', 'watch_interval', 'window_seconds', 'stop_after_idle')
# Options that do not change a byte of the dataset by themselves: how the codec runs enters the
# fingerprint as the task's ``shaping()`` (runtime, device, and threads or batch size where the
# runtime's codes depend on them).
NOT_SHAPING = RUN_CONTROL + ('output', 'codec_threads', 'device', 'encode_batch_size', 'codec_runtime')


class RunOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument('--resume', action='store_true', default=False,
                            help='Finish an interrupted build into the same --output: reuse encoded '
                                 'waveforms and complete shards. Default: off.')
        parser.add_argument('--overwrite', action='store_true', default=False,
                            help='Replace a dataset built with other options in --output. Default: off.')
        parser.add_argument('--progress-seconds', type=float, default=10.0,
                            help='Seconds between progress lines on stderr. Default: 10.')


def fingerprint(args, shaping: dict = None) -> str:
    """The id of the options that shape the dataset, and of ``shaping`` (the task's)."""
    options = {k: v for k, v in sorted(vars(args).items()) if k not in NOT_SHAPING}
    return stable_id('run', dict(options, **{f'task.{k}': v for k, v in (shaping or {}).items()}))


def _recorded_fingerprint(root: str):
    run_file = work_path(root, 'run.json')
    if FileSystems.exists(run_file):
        with FileSystems.open(run_file) as handle:
            return json.loads(handle.read().decode('utf-8'))['fingerprint']
    if FileSystems.exists(join(root, MANIFEST_NAME)):
        return read_manifest(root).get('fingerprint')
    return None


# What a build writes under its output: shards, the error log, the work folder, the manifest,
# counters and card, and what each task declares it writes or exports (Task.OUTPUT_FOLDERS/FILES).
DATASET_FOLDERS = tuple(dict.fromkeys(('webdataset', 'parquet', 'errors', WORK_DIR)
                                      + tuple(f for task in TASKS.values() for f in task.OUTPUT_FOLDERS)))
DATASET_FILES = tuple(dict.fromkeys((MANIFEST_NAME, COUNTERS_NAME, CARD_NAME)
                                    + tuple(f for task in TASKS.values() for f in task.OUTPUT_FILES)))


def _delete_dataset(root: str) -> None:
    for name in DATASET_FOLDERS:
        _delete_folder(join(root, name))
    for name in DATASET_FILES:
        if FileSystems.exists(join(root, name)):
            FileSystems.delete([join(root, name)])


def prepare_output(args, shaping: dict = None) -> str:
    """Checks ``--output`` against the options; returns 'fresh', 'resume' or 'complete'.

    Raises:
        ValueError: the output holds a dataset made with other options and no --overwrite.
    """
    root, current = args.output, fingerprint(args, shaping)
    recorded = _recorded_fingerprint(root)
    if _written_in_windows(root):
        if not args.overwrite:
            raise ValueError(f'{root} holds a dataset written in windows (--streaming): add to it with --streaming, '
                             'or use --overwrite to replace it, or another --output')
        delete_dataset(root)
        recorded = None
    if recorded is not None and recorded != current:
        if not args.overwrite:
            raise ValueError(f'{root} holds a dataset built with other options or another codec runtime, device, '
                             f'precision or thread count (fingerprint {recorded}, these give {current}); '
                             'use --overwrite to replace it or another --output')
        _delete_dataset(root)
        recorded = None
    if args.resume and recorded == current and FileSystems.exists(join(root, MANIFEST_NAME)) \
            and not FileSystems.exists(work_path(root, 'run.json')):
        return 'complete'
    if not args.resume:
        _delete_folder(work_path(root))     # a fresh run starts from nothing
    write_atomic(work_path(root, 'run.json'), json.dumps({'fingerprint': current}).encode('utf-8'))
    return 'resume' if args.resume and recorded == current else 'fresh'


def _written_in_windows(root: str) -> bool:
    """The output holds a continuous-mode dataset (manifest parts, see schemas/windows.py)."""
    return bool(FileSystems.match([join(root, PARTS_DIR) + '/*.json'])[0].metadata_list)


def delete_dataset(root: str) -> None:
    """Deletes the dataset under ``root``: what a batch build writes and a continuous-mode build's
    manifest parts."""
    _delete_dataset(root)
    _delete_folder(join(root, PARTS_DIR))


def finish(root: str) -> None:
    """Removes the work folder once the manifest is in place."""
    _delete_folder(work_path(root))


def _delete_folder(path: str) -> None:
    """Deletes a folder and what it holds. On S3 and GCS a folder is only a prefix (no object of
    that name exists): every object under it goes, through the trailing '/'."""
    if FileSystems.exists(path):
        FileSystems.delete([path])
    elif FileSystems.match([path + '/**'])[0].metadata_list:
        FileSystems.delete([path + '/'])
