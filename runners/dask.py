"""The build's Beam graph on a ``dask.distributed`` cluster: ``--runner=DaskRunner``.

Beam's own DaskRunner (``apache_beam.runners.dask``) computes only the graph's last transform
(other sinks never run), drops what a DoFn emits in ``finish_bundle``, hands a ParDo's tagged
outputs to every consumer of the main one, groups by Python's per-process string hash and keeps
no counters. This runner translates the same primitives itself:

- every PCollection is a list of Dask partitions (each a list of WindowedValues); a ParDo runs
  once per partition as one bundle (``start_bundle`` .. ``finish_bundle``), its outputs split by
  tag, its counters returned with them and summed on the client;
- GroupByKey encodes keys with their deterministic coder and buckets them by CRC-32, so every
  worker process sends a key to the same partition; Reshuffle spreads elements round robin;
- side inputs are materialised once and passed to the tasks that read them;
- each worker process keeps the DoFns it has set up, one per concurrent task, so a codec model
  is loaded once per process, not once per bundle;
- every leaf is computed; a worker that dies has its tasks rerun elsewhere by the scheduler (the
  build's writes are atomic and named by content, so a rerun rewrites the same files).

``--dask_client_address=HOST:PORT`` (or ``--dask_scheduler_file``) joins a running cluster;
without one, a LocalCluster of ``--dask-workers`` processes (one thread each) is started on
127.0.0.1 and closed with the run.
"""
import logging
import operator
import os
import zlib

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pipeline import PipelineVisitor
from apache_beam.runners.dask.dask_runner import DaskOptions
from apache_beam.runners.runner import PipelineResult, PipelineRunner, PipelineState

from runners.dask_tasks import (by_key, concat, concat_bucket, group_bucket, pick, round_robin, run_bundle,
                                sum_counters)
from runners.presets import Preset

LOG = logging.getLogger('runners.dask')
NAME = 'runners.dask.DaskRunner'


class DaskWorkerOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument('--dask-workers', type=int, default=0,
                            help='DaskRunner without --dask_client_address: worker processes of the local '
                                 'cluster (one thread each, bound to 127.0.0.1); 0 = one per core. Default: 0.')


def dask_flags(options) -> dict:
    """Beam's DaskOptions (address, scheduler file, timeout, partitions) as set by the user."""
    return options.view_as(DaskOptions).get_all_options(drop_default=True, current_only=True)


def local_workers(options) -> int:
    """Worker processes of the local cluster this run starts (0 when it joins a cluster)."""
    flags = dask_flags(options)
    if flags.get('address') or flags.get('scheduler_file'):
        return 0
    return options.view_as(DaskWorkerOptions).dask_workers or os.cpu_count() or 1


class DaskRunner(PipelineRunner):
    """Runs a batch pipeline on dask.distributed."""

    def run_pipeline(self, pipeline, options):
        from apache_beam.runners.dask.overrides import dask_overrides
        from distributed import Client, LocalCluster
        flags = dask_flags(options)
        partitions = flags.pop('npartitions', None)
        flags.pop('partition_size', None)
        cluster = None
        workers = local_workers(options)
        if workers:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host='127.0.0.1',
                                   dashboard_address=None, protocol='tcp')
            client = Client(cluster, **{k: v for k, v in flags.items() if k in ('name', 'timeout')})
        else:
            client = Client(**flags)
        threads = sum(client.nthreads().values()) or 1
        pipeline.replace_all(dask_overrides())
        graph = _Graph(partitions or 4 * threads)
        pipeline.visit(graph)
        future = client.compute(graph.final())
        return DaskResult(client, cluster, future)


class DaskResult(PipelineResult):
    def __init__(self, client, cluster, future):
        super().__init__(PipelineState.RUNNING)
        self._client, self._cluster, self._future, self._counters = client, cluster, future, {}

    def wait_until_finish(self, duration=None):
        if self._state != PipelineState.RUNNING:
            return self._state
        try:
            self._counters = self._future.result(timeout=None if duration is None else duration / 1000)
            self._state = PipelineState.DONE
        except BaseException:
            self._state = PipelineState.FAILED
            raise
        finally:
            self._close()
        return self._state

    def cancel(self):
        self._future.cancel()
        self._close()
        self._state = PipelineState.CANCELLED
        return self._state

    def _close(self):
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    def metrics(self):
        return _Counters(self._counters)


class _Counters:
    """MetricResults over the summed counters: ``query(filter)['counters']``."""

    def __init__(self, totals):
        self.totals = totals

    def query(self, filter=None):
        from apache_beam.metrics.execution import MetricKey, MetricResult
        from apache_beam.metrics.metric import MetricResults, MetricName
        found = []
        for (step, namespace, name), value in sorted(self.totals.items()):
            key = MetricKey(step, MetricName(namespace, name))
            if filter is None or MetricResults.matches(filter, key):
                found.append(MetricResult(key, value, value))
        return {'counters': found, 'distributions': [], 'gauges': [], 'string_sets': [],
                'bounded_tries': []}


class _Graph(PipelineVisitor):
    """Turns each primitive into Dask delayed tasks, partition by partition."""

    def __init__(self, partitions: int):
        self.partitions = max(1, int(partitions))
        self.pcolls, self.consumed, self.counters, self.leaves = {}, set(), [], []

    def visit_transform(self, node):
        from apache_beam.runners.dask.overrides import _Create, _Flatten, _GroupByKeyOnly, _Reshuffle
        import apache_beam as beam
        from apache_beam.transforms.core import Impulse
        transform = node.transform
        from apache_beam import pvalue
        inputs = [self.pcolls[id(p)] for p in node.inputs if not isinstance(p, pvalue.PBegin)]
        self.consumed.update(id(p) for p in node.inputs)
        self.consumed.update(id(s.pvalue) for s in node.side_inputs)
        if isinstance(transform, _Create):
            outputs = {None: self._create(list(transform.values))}
        elif isinstance(transform, Impulse):
            outputs = {None: self._create([b''])}
        elif isinstance(transform, beam.ParDo):
            outputs = self._pardo(node, inputs[0])
        elif isinstance(transform, _GroupByKeyOnly):
            outputs = {None: self._group(node, inputs[0])}
        elif isinstance(transform, _Reshuffle):
            outputs = {None: self._shuffle(inputs[0], round_robin, None, concat_bucket)}
        elif isinstance(transform, _Flatten):
            outputs = {None: [part for parts in inputs for part in parts]}
        else:
            raise ValueError(f'the DaskRunner cannot run {node.full_label} ({type(transform).__name__})')
        for tag, pcoll in node.outputs.items():
            self.pcolls[id(pcoll)] = outputs.get(None if tag in (None, 'None') else tag, [])
        self.leaves.extend((id(p), self.pcolls[id(p)]) for p in node.outputs.values())

    def _create(self, values):
        from dask import delayed
        from apache_beam.transforms.window import GlobalWindows
        count = max(1, min(len(values), self.partitions))
        size = -(-len(values) // count) if values else 0
        return [delayed(list, pure=True)([GlobalWindows.windowed_value(v) for v in values[i * size:(i + 1) * size]])
                for i in range(count)]

    def _pardo(self, node, parts) -> dict:
        from dask import delayed
        from apache_beam.internal import pickler
        transform = node.transform
        args, kwargs = transform.args, transform.kwargs   # side inputs as placeholders
        main = next(iter(node.main_inputs.values()))
        window_fn = main.windowing.windowfn if hasattr(main, 'windowing') else None
        payload = pickler.dumps((transform.fn, list(args), kwargs, window_fn,
                                 [(type(s), s._view_options()) for s in node.side_inputs]))
        key = f'{node.full_label}:{zlib.crc32(payload):08x}'
        sides = [delayed(concat, pure=True)(*self.pcolls[id(s.pvalue)]) for s in node.side_inputs]
        runs = [delayed(run_bundle, pure=True)(key, payload, node.full_label, part, *sides) for part in parts]
        self.counters.extend(delayed(operator.itemgetter(1), pure=True)(run) for run in runs)
        tags = [None if t in (None, 'None') else t for t in node.outputs]
        return {tag: [delayed(pick, pure=True)(run, tag) for run in runs] for tag in tags}

    def _group(self, node, parts):
        from apache_beam import coders
        from apache_beam.typehints import typehints
        element = node.inputs[0].element_type
        key_type = element.tuple_types[0] if isinstance(element, typehints.TupleConstraint) else typehints.Any
        try:
            coder = coders.registry.get_coder(key_type).as_deterministic_coder(node.full_label)
        except ValueError:
            coder = coders.FastPrimitivesCoder().as_deterministic_coder(node.full_label)
        return self._shuffle(parts, by_key, coder, group_bucket)

    def _shuffle(self, parts, bucket_fn, coder, merge_fn):
        """Each input partition split into buckets by ``bucket_fn``; bucket j of all of them merged."""
        from dask import delayed
        count = self.partitions
        splits = [delayed(bucket_fn, pure=True)(part, i, count, coder) for i, part in enumerate(parts)]
        return [delayed(merge_fn, pure=True)(*[delayed(operator.itemgetter(j), pure=True)(s) for s in splits])
                for j in range(count)]

    def final(self):
        """One task that depends on every leaf and returns the summed counters."""
        from dask import delayed
        leaves = [parts for pid, parts in self.leaves if pid not in self.consumed]
        drained = [delayed(len, pure=True)(part) for parts in leaves for part in parts]
        return delayed(sum_counters, pure=True)(drained, *self.counters)


# What --runner may say for this runner (the build maps the short names to NAME).
RUNNER_NAMES = (NAME, 'DaskRunner', 'dask')

DASK_LOCAL = Preset(
    name='dask-local',
    description='DaskRunner on a LocalCluster of --dask-workers processes on 127.0.0.1 (default: one per '
                'core); for a running cluster use --runner=DaskRunner --dask_client_address=HOST:PORT.',
    flags=('--runner=DaskRunner',))
