"""What every task shares: its flags are its own (every other task refuses them) and it reads
them once, into a frozen config."""
import pytest


def test_every_flag_a_task_declares_is_refused_by_every_other_task():
    from argparse import Namespace
    from pipelines.build import check_task_flags
    from pipelines.options import make_parser
    from transforms.tasks.registry import TASKS
    defaults = vars(make_parser().parse_args([]))
    checked = 0
    for task, chosen in TASKS.items():
        own = set(chosen.option_names()) | set(chosen.SHARED_OPTIONS)
        for other, declaring in TASKS.items():
            for flag in set(declaring.option_names()) - own:
                args = Namespace(**dict(defaults, task=task, **{flag: object()}))
                with pytest.raises(ValueError, match=f'option\\(s\\) of --task={other}, not of --task={task}'):
                    check_task_flags(args, defaults)
                checked += 1
        check_task_flags(Namespace(**dict(defaults, task=task, **{f: object() for f in own})), defaults)
    assert checked > 60 and 'target_stem' in TASKS['continuation'].option_names()


@pytest.mark.parametrize('task', ['continuation', 'separation', 'descriptors', 'concept'])
def test_a_task_reads_the_flags_once_into_a_frozen_config(tmp_path, task):
    import dataclasses
    from pipelines.build import resolve_paths
    from pipelines.options import parse_args
    from transforms.tasks.registry import task_class
    args, beam_options = parse_args([f'--input={tmp_path}', f'--output={tmp_path / "out"}', f'--task={task}',
                                     '--codec-weights=random', '--codec-threads=1'])
    resolve_paths(args)
    built = task_class(task).from_args(args, beam_options)
    assert dataclasses.is_dataclass(built.config) and type(built.config) is task_class(task).CONFIG
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built.config, dataclasses.fields(built.config)[0].name, None)
    before = (built.manifest_info(), built.shaping(), built.audio_format(), built.fill_classes())
    for name in list(vars(args)):             # the flags changed after the task was made change nothing
        setattr(args, name, None)
    assert (built.manifest_info(), built.shaping(), built.audio_format(), built.fill_classes()) == before
    assert not any(value is args for value in vars(built).values())
