"""README.md and docs/: every relative link and anchor resolves, every `python -m` module and
`make` target named exists."""
import glob
import importlib.util
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = [os.path.join(ROOT, 'README.md')] + sorted(glob.glob(os.path.join(ROOT, 'docs', '**', '*.md'), recursive=True))
LINK = re.compile(r'\[[^\]]*\]\(([^)\s]+)\)')
MODULE = re.compile(r'python3? -m ([A-Za-z_][\w.]*)')
MAKE = re.compile(r'^make((?: [A-Za-z0-9_.=/:-]+)*)')


def _text(page):
    return open(page, encoding='utf-8').read()


def _prose(text):
    """The text outside fenced code blocks (where links and headings are markdown)."""
    return re.sub(r'^```.*?^```', '', text, flags=re.M | re.S)


def _code(text) -> list:
    """The commands written as code: lines of fenced blocks and inline code spans."""
    blocks = re.findall(r'^```[^\n]*\n(.*?)^```', text, flags=re.M | re.S)
    return [line.strip() for block in blocks for line in block.splitlines()] + re.findall(r'`([^`\n]+)`', _prose(text))


def anchors(page) -> set:
    """GitHub's heading anchors of a page: lower case, punctuation dropped, spaces to '-'."""
    return {re.sub(r'[^\w\- ]', '', m.group(1).strip().lower()).replace(' ', '-')
            for m in re.finditer(r'^#{1,6} (.+)$', _prose(_text(page)), flags=re.M)}


def make_targets() -> set:
    return set(re.findall(r'^([A-Za-z0-9_./-]+):', _text(os.path.join(ROOT, 'Makefile')), flags=re.M))


def test_the_docs_exist_and_the_readme_is_an_overview():
    assert len(PAGES) > 10
    assert len(_text(PAGES[0]).splitlines()) < 400


@pytest.mark.parametrize('page', PAGES, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_relative_link_and_anchor_resolves(page):
    broken = []
    for target in LINK.findall(_prose(_text(page))):
        if re.match(r'[a-z]+:', target):
            continue
        path, _, anchor = target.partition('#')
        dest = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
        if not os.path.exists(dest):
            broken.append(f'{target}: no such file')
        elif anchor and (not dest.endswith('.md') or anchor not in anchors(dest)):
            broken.append(f'{target}: no heading #{anchor}')
    assert not broken, f'{os.path.relpath(page, ROOT)}: {broken}'


@pytest.mark.parametrize('page', PAGES, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_python_module_and_make_target_named_exists(page):
    text, missing = _text(page), []
    for module in set(MODULE.findall(text)):
        if module.endswith('.'):        # a placeholder: python -m pipelines.<tool>
            continue
        local = os.path.join(ROOT, *module.split('.'))
        if not (os.path.exists(local + '.py') or os.path.exists(os.path.join(local, '__main__.py'))
                or (not os.path.exists(local) and importlib.util.find_spec(module.split('.')[0]))):
            missing.append(f'python -m {module}')
    targets = make_targets()
    for args in (m.group(1) for code in _code(text) for m in [MAKE.match(code)] if m):
        for word in args.split():
            if '=' not in word and word not in targets:
                missing.append(f'make {word}')
    assert not missing, f'{os.path.relpath(page, ROOT)}: {missing}'
