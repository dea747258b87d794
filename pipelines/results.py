"""What a finished build reports: its result, its counters and the summary lines it prints."""
from dataclasses import dataclass

from apache_beam.metrics.metric import MetricsFilter

from schemas.shards import join
from transforms.split import MIN_GROUPS_FOR_EVERY_SPLIT


class NothingBuilt(RuntimeError):
    """The run wrote no example; the message says why."""


@dataclass(frozen=True)
class BuildResult:
    output: str
    manifest: dict
    counters: dict


def counters(result) -> dict:
    """Committed counter values by name, summed over steps."""
    totals = {}
    try:
        found = result.metrics().query(MetricsFilter())['counters']
    except (NotImplementedError, KeyError, AttributeError):
        return totals
    for counter in found:
        name = f'{counter.key.metric.namespace.rsplit(".", 1)[-1]}.{counter.key.metric.name}'
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[name] = totals.get(name, 0) + (value or 0)
    return totals


def summarize(manifest: dict, metrics: dict, output: str, task=None) -> list:
    """The run's last lines: what was read, built, dropped and failed."""
    get = lambda name: int(metrics.get(name, 0))
    codec = manifest.get('codec')
    lines = [f'dataset: {output} (task: {manifest.get("task", "continuation")})']
    lines += [f'codec: {codec["name"]} weights={codec["weights"]}'] if codec else []
    lines.append(f'songs read: {songs_read(metrics)}')
    no_examples = no_example_reasons(metrics)
    lines.append(f'songs with no examples: {sum(no_examples.values())} '
                 f'({", ".join(f"{k}={v}" for k, v in no_examples.items() if v) or "none"})')
    for split, stats in manifest['splits'].items():
        lines.append(f'{split}: {stats["examples"]} examples from {stats["songs"]} songs, '
                     f'{stats["audio_seconds"]:.1f} s of audio, '
                     f'{max(map(len, stats["shards"].values()), default=0)} shard(s)')
    lines += split_lines(metrics)
    lines += task.summary(manifest, metrics) if task is not None else []
    missing = {n.split('songs_missing_', 1)[1]: int(v) for n, v in sorted(metrics.items()) if '.songs_missing_' in n}
    if missing or get('SetAsideReserveFn.songs_reserved'):
        lines.append(f'songs lacking a target class: {", ".join(f"{k}={v}" for k, v in missing.items()) or "none"}; '
                     f'reserve: {get("SetAsideReserveFn.songs_reserved")} song(s) set aside, '
                     f'{get("FillFromReserveFn.stems_filled")} stem(s) filled')
    errors = manifest['errors']
    lines.append(f'errors: {errors["total"]} ({", ".join(f"{k}={v}" for k, v in errors["by_stage"].items()) or "none"})'
                 + (f' -> {join(output, errors["path"])}' if errors['total'] else ''))
    if codec and codec['weights'].startswith('random'):
        lines.append('NOTE: codes come from RANDOM codec weights (--codec-weights=random): '
                     'for testing the pipeline, not for training.')
    return lines


def split_lines(metrics: dict) -> list:
    """What PlanSplits did: the groups it moved so every split has one, or the splits left empty."""
    groups = int(metrics.get('PlanSplits.split_groups', 0))
    moved = {n.rsplit('groups_moved_to_', 1)[1]: int(v) for n, v in sorted(metrics.items())
             if n.startswith('PlanSplits.groups_moved_to_') and v}
    empty = [n.rsplit('split_empty_', 1)[1] for n, v in sorted(metrics.items())
             if n.startswith('PlanSplits.split_empty_') and v]
    lines = []
    if moved:
        lines.append(f'splits: {groups} group(s) split by hash left {", ".join(moved)} empty: '
                     f'{sum(moved.values())} group(s) moved there ({", ".join(f"{k}={v}" for k, v in moved.items())})')
    if empty:
        lines.append(f'splits: no {" or ".join(empty)} set: {groups} group(s) split by hash '
                     f'(at least {MIN_GROUPS_FOR_EVERY_SPLIT} give every split one)')
    return lines


# Counters of songs that yield no example, whichever stage or task drops them.
NO_EXAMPLE_PREFIXES = ('songs_no_', 'songs_too_short', 'songs_all_windows', 'songs_skipped_')


def no_example_reasons(metrics: dict) -> dict:
    """{reason: songs} of the songs that yielded no example ('no_target', 'too_short', ...)."""
    reasons = {}
    for name, value in sorted(metrics.items()):
        counter = name.split('.')[-1]
        if counter.startswith(NO_EXAMPLE_PREFIXES):
            reasons[counter[len('songs_'):]] = reasons.get(counter[len('songs_'):], 0) + int(value)
    return reasons


def songs_read(metrics: dict) -> int:
    """Songs the source read, whichever source it was."""
    return int(sum(v for name, v in metrics.items() if name.endswith('.songs_read')))


def explain_nothing_built(manifest: dict, errors: list, metrics: dict, input_path: str,
                          layout: str = '<artist>/<song>.zip or <artist>/<song>/ folders') -> str:
    if not songs_read(metrics) and not errors:
        return f'no songs found under {input_path} (expected {layout})'
    stages = manifest['errors']['by_stage']
    reasons = [f'{len(errors)} error(s) ({", ".join(f"{k}={v}" for k, v in stages.items())})'] if errors else []
    reasons += [f'{name.split(".")[-1]}={int(v)}' for name, v in sorted(metrics.items())
                if name.split('.')[-1].startswith(NO_EXAMPLE_PREFIXES) and v]
    return f'no examples were written from {input_path}: ' + '; '.join(reasons or ['no usable songs'])
