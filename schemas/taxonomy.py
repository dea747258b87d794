"""The canonical instrument classes and the aliases that map stem names onto them.

One table for every source: a stem's file name (or a corpus' own label) is split
into lower-case tokens and matched against the aliases below.
"""
import re

# Order matters twice: it is the order classes are listed in, and the order used
# when a name holds aliases of several classes and no token matches exactly.
CANONICAL_ALIASES = {
    'drums': ('drum', 'drums', 'drm', 'kit', 'kick', 'snare', 'hihat', 'hihats', 'hat', 'hats',
              'cymbal', 'cymbals', 'tom', 'toms', 'overhead', 'overheads', 'drumkit', 'beat'),
    'bass': ('bass', 'bassline', 'subbass', 'sub', 'bs'),
    'guitar': ('guitar', 'guitars', 'gtr', 'gtrs', 'gt'),
    'piano': ('piano', 'keys', 'key', 'keyboard', 'keyboards', 'rhodes', 'epiano', 'organ', 'wurli'),
    'vocals': ('vocal', 'vocals', 'vox', 'voice', 'voices', 'choir', 'bv', 'bvs', 'vocoder'),
    'perc': ('perc', 'percs', 'percussion', 'shaker', 'tambourine', 'tamb', 'conga', 'congas',
             'bongo', 'bongos', 'clap', 'claps'),
    'fx': ('fx', 'sfx', 'effect', 'effects', 'riser', 'risers', 'impact', 'sweep'),
    'synth': ('synth', 'synths', 'pad', 'pads', 'arp', 'pluck', 'plucks'),
    'winds': ('winds', 'wind', 'woodwind', 'woodwinds', 'flute', 'flutes', 'sax', 'saxophone',
              'clarinet', 'oboe', 'bassoon', 'reed'),
    'strings': ('strings', 'string', 'violin', 'violins', 'viola', 'cello', 'cellos', 'contrabass'),
    'brass': ('brass', 'trumpet', 'trumpets', 'trombone', 'trombones', 'horn', 'horns', 'tuba'),
    'other': ('other',),
    'mix': (),   # a whole mix (--source=folders); never named by a stem's file name
}
CANONICAL_CLASSES = tuple(CANONICAL_ALIASES)
WHOLE_MIX = 'mix'

# Each corpus' own stem labels -> canonical class, keyed by normalize_label(). A corpus label not
# listed here falls back to the stem-name aliases above (classify_stem).
SOURCE_LABELS = {
    # Slakh2100 inst_class: the General MIDI program families (both spellings of Sound Effects).
    'slakh': {
        'piano': 'piano', 'chromatic percussion': 'perc', 'organ': 'piano', 'guitar': 'guitar',
        'bass': 'bass', 'strings': 'strings', 'strings (continued)': 'strings', 'ensemble': 'strings',
        'brass': 'brass', 'reed': 'winds', 'pipe': 'winds', 'synth lead': 'synth', 'synth pad': 'synth',
        'synth effects': 'synth', 'sound effects': 'fx', 'ethnic': 'other', 'percussive': 'perc',
        'drums': 'drums',
    },
    # MUSDB18 stem names (the mixture is not a stem).
    'musdb': {'drums': 'drums', 'bass': 'bass', 'other': 'other', 'vocals': 'vocals'},
    # MoisesDB stemName.
    'moisesdb': {
        'bass': 'bass', 'bowed strings': 'strings', 'drums': 'drums', 'guitar': 'guitar',
        'other': 'other', 'other keys': 'piano', 'other plucked': 'other', 'percussion': 'perc',
        'piano': 'piano', 'vocals': 'vocals', 'wind': 'winds',
    },
}
# General MIDI program families in program order (8 programs each), spelled as Slakh's inst_class
# (GM's Synth Effects is 'Sound Effects', GM's Sound Effects 'Sound effects'): the class when a
# track's metadata lacks inst_class; program 128 is Slakh's drum kit.
GM_FAMILIES = ('Piano', 'Chromatic Percussion', 'Organ', 'Guitar', 'Bass', 'Strings', 'Strings (continued)',
               'Brass', 'Reed', 'Pipe', 'Synth Lead', 'Synth Pad', 'Sound Effects', 'Ethnic', 'Percussive',
               'Sound effects')
RHYTHM_SECTION = ('drums', 'bass', 'perc')

_ALIAS_TO_CLASS = {alias: cls for cls, aliases in CANONICAL_ALIASES.items() for alias in aliases}
# Longest aliases first, so that 'bassoon' is found before 'bass' inside 'bassoon2'.
_SUBSTRING_ALIASES = sorted((a for a in _ALIAS_TO_CLASS if len(a) >= 4), key=len, reverse=True)


def name_tokens(name: str) -> list:
    """Splits a stem name into lower-case tokens: 'LeadVox_02' -> ['lead', 'vox']."""
    spaced = re.sub(r'([a-z])([A-Z])', r'\1 \2', name)
    return [t for t in re.split(r'[^a-z]+', spaced.lower()) if t]


def classify_stem(name: str) -> str:
    """Maps a stem's name (file name without extension) to a canonical class.

    A token equal to an alias wins (the first such token); otherwise the longest
    alias of four or more letters found inside the name; otherwise 'other'.
    """
    tokens = name_tokens(name)
    for token in tokens:
        if token in _ALIAS_TO_CLASS:
            return _ALIAS_TO_CLASS[token]
    joined = ''.join(tokens)
    for alias in _SUBSTRING_ALIASES:
        if alias in joined:
            return _ALIAS_TO_CLASS[alias]
    return 'other'


def instance_names(classes: list) -> list:
    """Names each stem's instance: the second guitar of a song is 'guitar#2'."""
    seen = {}
    names = []
    for cls in classes:
        seen[cls] = seen.get(cls, 0) + 1
        names.append(cls if seen[cls] == 1 else f'{cls}#{seen[cls]}')
    return names


def instrument_of(instance: str) -> str:
    """'guitar#2' -> 'guitar'."""
    return instance.split('#', 1)[0]


def normalize_label(label) -> str:
    """A corpus label as a lookup key: lower case, '_' and '-' as spaces, single spaces."""
    return ' '.join(str(label).lower().replace('_', ' ').replace('-', ' ').split())


def classify_source_label(source: str, label, fallback_names=()) -> str:
    """Maps a corpus' own label (Slakh inst_class, MUSDB stem name, MoisesDB stemName) to a
    canonical class: the corpus' table first, then each fallback name in the table, then the
    stem-name aliases of the label and the fallback names; 'other' when nothing matches.

    Raises:
        ValueError: ``source`` has no label table.
    """
    if source not in SOURCE_LABELS:
        raise ValueError(f'no label table for source {source!r}; known: {sorted(SOURCE_LABELS)}')
    table = SOURCE_LABELS[source]
    names = [n for n in (label, *fallback_names) if n]
    for name in names:
        if normalize_label(name) in table:
            return table[normalize_label(name)]
    for name in names:
        found = classify_stem(str(name))
        if found != 'other':
            return found
    return 'other'


def gm_family(program) -> str:
    """Slakh's inst_class of a MIDI program number (0-127; 128 = drums)."""
    program = int(program)
    if program == 128:
        return 'Drums'
    if not 0 <= program < 128:
        raise ValueError(f'MIDI program {program} is outside 0-128')
    return GM_FAMILIES[program // 8]
