"""What runs inside the Dask tasks of runners/dask.py: a ParDo bundle over one partition (its
DoFn kept set up per worker process), the partition moves of GroupByKey and Reshuffle, and the
counters' sums. Every function here is shipped to the workers by reference.

Beam's modules are imported here, at the top: a worker imports them once, when it unpickles the
first task function, before any task runs. Imported inside the functions instead, two task
threads of one worker could import Beam at once and deadlock on its module locks.
"""
import threading
import zlib

from apache_beam.internal import pickler
from apache_beam.metrics.execution import MetricsContainer
from apache_beam.runners.common import DoFnContext, DoFnInvoker, DoFnSignature, Receiver, _OutputHandler
from apache_beam.runners.worker import statesampler
from apache_beam.transforms.core import DoFn
from apache_beam.transforms.sideinputs import SideInputMap
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils import counters


def pick(run, tag):
    return run[0].get(tag, [])


def concat(*parts):
    return [value for part in parts for value in part]


def round_robin(part, index, count, coder):
    buckets = [[] for _ in range(count)]
    for position, value in enumerate(part):
        buckets[(index + position) % count].append(value)
    return buckets


def concat_bucket(*buckets):
    return concat(*buckets)


def by_key(part, index, count, coder):
    buckets = [[] for _ in range(count)]
    for windowed in part:
        key, value = windowed.value
        encoded = coder.encode(key)
        buckets[zlib.crc32(encoded) % count].append((encoded, key, value))
    return buckets


def group_bucket(*buckets):
    groups = {}
    for bucket in buckets:
        for encoded, key, value in bucket:
            groups.setdefault(encoded, (key, []))[1].append(value)
    return [GlobalWindows.windowed_value((key, values)) for key, values in groups.values()]


def sum_counters(drained, *counter_lists):
    totals = {}
    for pairs in counter_lists:
        for name, value in pairs:
            totals[name] = totals.get(name, 0) + value
    return totals


# Set-up DoFns of this worker process, by transform: idle instances ready for the next bundle.
_IDLE = {}
_LOCK = threading.Lock()


def _acquire(key, payload):
    with _LOCK:
        idle = _IDLE.setdefault(key, [])
        if idle:
            return idle.pop()
    # Several tasks of one transform may run at once in a process: each gets its own instance.
    fn, args, kwargs, window_fn, sides = pickler.loads(payload)
    fn.setup()
    return fn, args, kwargs, window_fn, sides


def _release(key, entry):
    with _LOCK:
        _IDLE[key].append(entry)


class _Outputs(dict):
    """Receivers by tag, collecting into one list of (tag, WindowedValue)."""

    def __init__(self):
        super().__init__()
        self.values = []

    def __missing__(self, tag):
        values = self.values

        class _Receiver(Receiver):
            def receive(self, windowed_value):
                values.append((tag, windowed_value))
        self[tag] = receiver = _Receiver()
        return receiver


def run_bundle(key, payload, label, part, *side_values):
    """One partition through the DoFn as one bundle: ``({tag: [WindowedValue]}, [(counter, value)])``."""
    entry = _acquire(key, payload)
    fn, args, kwargs, window_fn, sides = entry
    sampler = statesampler.StateSampler('', counters.CounterFactory())   # per bundle: its states keep their container
    statesampler.set_current_tracker(sampler)
    container = MetricsContainer(label)
    outputs = _Outputs()
    handler = _OutputHandler(window_fn=window_fn, main_receivers=outputs[None], tagged_receivers=outputs,
                             per_element_output_counter=None, output_batch_converter=None,
                             process_yields_batches=False, process_batch_yields_elements=False)
    side_inputs = [SideInputMap(view, options, values) for (view, options), values in zip(sides, side_values)]
    invoker = DoFnInvoker.create_invoker(DoFnSignature(fn), handler, context=DoFnContext(label, state=None),
                                         side_inputs=side_inputs, input_args=args, input_kwargs=kwargs,
                                         user_state_context=None, bundle_finalizer_param=DoFn.BundleFinalizerParam())
    with sampler.scoped_state(label, 'process', metrics_container=container):
        invoker.invoke_start_bundle()
        for windowed in part:
            invoker.invoke_process(windowed)
        invoker.invoke_finish_bundle()
    _release(key, entry)
    by_tag = {}
    for tag, windowed in outputs.values:
        by_tag.setdefault(tag, []).append(windowed)
    found = container.get_cumulative().counters
    return by_tag, [((label, k.metric.namespace, k.metric.name), v) for k, v in found.items()]
