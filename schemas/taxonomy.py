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
}
CANONICAL_CLASSES = tuple(CANONICAL_ALIASES)
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
