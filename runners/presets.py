"""Runner presets: ``--preset=NAME`` fills in Beam's flags (and a few of the build's) for a runner.

A preset is data: the flags it sets, plus an optional ``derive`` that computes flags from the
user's own (the Dataflow image from ``--project``/``--region``). Its flags go before the user's,
so a flag the user gives wins: a single-valued flag by argparse's last-wins, a repeatable one
(``--experiments``, ``--dataflow_service_options``, ``--environment_options``) key by key, where
the key is the text before ``=`` (a user ``worker_accelerator=...`` replaces the preset's; a new
experiment is added to the preset's).
"""
from dataclasses import dataclass
from typing import Callable, Optional

from apache_beam.options.pipeline_options import PipelineOptions

REPEATABLE_FLAGS = {'--experiments': '--experiments', '--experiment': '--experiments',
                    '--dataflow_service_options': '--dataflow_service_options',
                    '--environment_options': '--environment_options'}


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    flags: tuple                                   # '--flag=value' tokens
    derive: Optional[Callable] = None              # (the user's PipelineOptions) -> more '--flag=value' tokens

    def argv(self, user_argv) -> list:
        """The preset's flags followed by the user's, with the preset's repeatable values that the
        user's replace left out."""
        own = list(self.flags) + (self.derive(PipelineOptions(list(user_argv))) if self.derive else [])
        overridden = set(_repeatable_values(user_argv))
        kept = [token for token in own if not set(_repeatable_values([token])) & overridden]
        return kept + list(user_argv)


def _repeatable_values(argv):
    """(flag, key) of every repeatable flag in ``argv``, for ``--flag=key=value`` and ``--flag key=value``."""
    argv = list(argv)
    for i, token in enumerate(argv):
        name, sep, value = token.partition('=')
        if name not in REPEATABLE_FLAGS:
            continue
        if not sep:
            value = argv[i + 1] if i + 1 < len(argv) else ''
        yield REPEATABLE_FLAGS[name], value.split('=', 1)[0]
