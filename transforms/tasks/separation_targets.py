"""The separation task's targets: what --targets and --target-labels name, each target's file
name, and which of a song's stems each target sums."""
import re
from dataclasses import dataclass

from schemas.separation import MIXTURE
from schemas.taxonomy import CANONICAL_CLASSES, WHOLE_MIX, normalize_label

OTHER = 'other'
DEFAULT_TARGETS = ('vocals', 'drums', 'bass', OTHER)
RESERVED_NAMES = (MIXTURE, 'json', 'mix')


@dataclass(frozen=True)
class Target:
    """One target: its member/file name, what selects its stems and what the user wrote."""
    name: str      # 'vocals', 'electric_bass_pick'
    kind: str      # 'class' | 'label' | 'other'
    key: str       # the canonical class, or the normalised label
    label: str     # as given: 'drums', 'Electric Bass (pick)'


def member_name(label: str) -> str:
    """A target's file and member name: lower case, every run of other characters one '_'
    ('Electric Bass (pick)' -> 'electric_bass_pick'). No dots, so WebDataset keeps it whole."""
    return re.sub(r'[^a-z0-9]+', '_', str(label).lower()).strip('_')


def _values(values, separators=',') -> list:
    return [v.strip() for value in values or () for v in re.split(f'[{separators}]', value) if v.strip()]


def parse_targets(targets, labels) -> tuple:
    """--targets and --target-labels -> Targets: classes, then labels, then ``other`` last.

    Raises:
        ValueError: an unknown class, a name that is empty, reserved or given twice, or no target
            besides other.
    """
    classes = [v.lower() for v in _values(targets)] if targets else ([] if labels else list(DEFAULT_TARGETS))
    unknown = sorted(set(classes) - set(CANONICAL_CLASSES) - {OTHER} | ({WHOLE_MIX} & set(classes)))
    if unknown:
        raise ValueError(f'--targets: unknown class(es) {unknown}; choose from '
                         f'{[c for c in CANONICAL_CLASSES if c != WHOLE_MIX]}')
    found = [Target(c, 'class', c, c) for c in dict.fromkeys(classes) if c != OTHER]
    found += [Target(member_name(v), 'label', normalize_label(v), v) for v in _values(labels, ',|')]
    found += [Target(OTHER, OTHER, OTHER, OTHER)] if OTHER in classes else []
    names = [t.name for t in found]
    for target in found:
        if not target.name or target.name in RESERVED_NAMES:
            raise ValueError(f'target {target.label!r} gives the file name {target.name!r}, which is '
                             f'{"empty" if not target.name else "reserved"}')
        if names.count(target.name) > 1:
            raise ValueError(f'two targets share the file name {target.name!r}: '
                             f'{[t.label for t in found if t.name == target.name]}')
    if not [t for t in found if t.kind != OTHER]:
        raise ValueError('--targets/--target-labels: give at least one target besides other')
    return tuple(found)


def assign_stems(stems, targets) -> tuple:
    """Which of a song's stems (StemRefs) each target sums: a stem goes to the label target of
    its finest matching name, else to its class' target; ``other`` takes the rest.
    Returns ({target name: [instances]}, [instances no target takes])."""
    by_label = {t.key: t.name for t in targets if t.kind == 'label'}
    by_class = {t.key: t.name for t in targets if t.kind == 'class'}
    assigned, rest = {t.name: [] for t in targets}, []
    for stem in sorted(stems, key=lambda s: s.instance):
        name = next((by_label[normalize_label(l)] for l in stem.labels if normalize_label(l) in by_label),
                    by_class.get(stem.instrument))
        (assigned[name] if name else rest).append(stem.instance)
    if OTHER in assigned:
        assigned[OTHER], rest = rest, []
    return assigned, rest
