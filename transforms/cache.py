"""This machine's cache folder (``STEMFORGE_CACHE``, default ``~/.cache/stemforge``): exported
encoders, random-weight calibrations, query indexes fetched from object stores."""
import os


def cache_dir() -> str:
    return os.environ.get('STEMFORGE_CACHE', os.path.join(os.path.expanduser('~'), '.cache', 'stemforge'))
