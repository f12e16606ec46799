"""``mrouter completion bash|zsh``: a shell completion script, generated from the parser.

The script is built from :func:`mrouter.cli.main.build_parser` by shtab, so every
subcommand, action and option completes as the parser defines it; files complete where an
argument names a file (``--config``, ``lab up``, ``config check``, ...).
"""

from __future__ import annotations

import argparse

SHELLS = ("bash", "zsh")

COMPLETION_EXAMPLE = """\
examples:
  mrouter completion bash      # save as /etc/bash_completion.d/mrouter
  mrouter completion zsh       # save as _mrouter in a folder on zsh's $fpath
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Print a completion script for bash or zsh on stdout. bash: save it as "
        "/etc/bash_completion.d/mrouter (or source it from ~/.bashrc); zsh: save it as "
        "_mrouter in a folder on $fpath and run compinit.")
    parser.epilog = COMPLETION_EXAMPLE
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    parser.set_defaults(func=run_completion)


def completion_script(shell: str) -> str:
    import shtab

    from mrouter.cli.main import build_parser

    parser = build_parser()
    _mark_files(parser)
    script: str = shtab.complete(parser, shell=shell)
    return script


#: Options and positionals (by dest) that name a file or a directory.
FILE_DESTS = frozenset({"config", "file", "events", "output", "pcap", "socket"})


def _mark_files(parser: argparse.ArgumentParser) -> None:
    import shtab

    for action in parser._actions:  # argparse keeps no public list of its actions
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _mark_files(sub)
        elif action.dest in FILE_DESTS:
            action.complete = shtab.FILE  # type: ignore[attr-defined]


def run_completion(args: argparse.Namespace) -> int:
    print(completion_script(args.shell), end="")
    return 0
