"""``kolite`` command line: predict and info here; serve/label/export/bench/standins wired in lazily."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from kolite.errors import KoliteError

__all__ = ["INSTALL_HINTS", "THREADS_HELP", "DefaultsHelpFormatter", "build_parser", "format_default", "main"]

# What to install when a subcommand's optional dependencies are missing.
# torch goes first, from the CPU index: an unpinned `pip install torch` pulls gigabytes of CUDA wheels.
_TORCH_FIRST = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu && "
INSTALL_HINTS = {
    "serve": "pip install 'kolite[serve]'",
    "label": "pip install 'kolite[label]'",
    "export": _TORCH_FIRST + "pip install 'kolite[export]'",
    "standins": _TORCH_FIRST + "pip install 'kolite[export]'",
    "bench": _TORCH_FIRST + "pip install 'kolite[bench]'",
}
# Runtime-internal subcommands whose modules may need optional dependencies (fastapi, pyarrow...).
INTERNAL_PLUGINS = {"serve": "kolite.server.cli", "label": "kolite.labeling.cli"}
PLUGIN_GROUP = "kolite.commands"
# One wording for every --threads option that defaults to the CPU budget (kolite/cpu_budget.py).
THREADS_HELP = "default: the CPU budget, the smallest of physical cores, affinity mask and cgroup CPU quota"


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the help already states it (so `--help` and the
    generated CLI reference never leave a default unsaid)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        if (
            "default" in help_text.lower()
            or action.default in (None, argparse.SUPPRESS)
            or isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._VersionAction))
            or not action.option_strings
        ):
            return help_text
        return f"{help_text} (default: {format_default(action.default)})".lstrip().replace("%", "%%")


def format_default(value: Any) -> str:
    """A default as a user would type it: lists comma-joined, the empty string as ''."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "''"
    return str(value) if value != "" else "''"


def _unavailable(name: str, reason: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        hint = INSTALL_HINTS.get(name, "pip install 'kolite[...]' for the extra that provides it")
        print(f"kolite {name}: not available ({reason}). Install it with: {hint}", file=sys.stderr)
        return 2

    return run


def _add_stub(subparsers: Any, name: str, reason: str) -> None:
    parser = subparsers.add_parser(name, help=f"(unavailable: {reason})", add_help=False)
    parser.set_defaults(func=_unavailable(name, reason), accepts_extra=True)


def _register(subparsers: Any, name: str, load: Callable[[], Callable[[Any], None]]) -> None:
    """Register one plugin; a plugin that cannot be imported becomes a stub naming the pip command to run."""
    try:
        register = load()
        register(subparsers)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        _add_stub(subparsers, name, f"missing module {missing!r}")
    except Exception as exc:  # a broken plugin must never take predict/info down with it
        _add_stub(subparsers, name, f"plugin failed to load: {exc!r}")


def _register_plugins(subparsers: Any) -> None:
    for name, module in INTERNAL_PLUGINS.items():
        _register(subparsers, name, lambda module=module: import_module(module).register)
    for entry_point in sorted(entry_points(group=PLUGIN_GROUP), key=lambda ep: ep.name):
        if entry_point.name in subparsers.choices:
            continue
        _register(subparsers, entry_point.name, entry_point.load)


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--variant", default="auto", help="auto (default) or a variant of the artifact (`kolite info` lists them)"
    )
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    parser.add_argument("--threads", type=int, default=None, help=f"intra-op threads ({THREADS_HELP})")
    add_guard_option(parser)


def add_guard_option(parser: argparse.ArgumentParser) -> None:
    """``--guard/--no-guard`` (predict, label, serve): kolite.load's ``guard`` (None = the artifact's default)."""
    parser.add_argument(
        "--guard",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fidelity guard: rows whose int8 decision margin is below the artifact's measured tau are re-run in "
        "the float graph (default: on where export measured it re-runs <= 5%% of rows; `kolite info` shows it)",
    )


def build_parser() -> argparse.ArgumentParser:
    from kolite.cli_commands import run_info, run_predict
    from kolite.cli_io import FORMATS

    parser = argparse.ArgumentParser(prog="kolite", description="Korean text classifiers on ONNX Runtime, no torch.")
    parser.add_argument("--version", action="version", version=f"kolite {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")

    predict = subparsers.add_parser(
        "predict",
        help="classify / tag texts (arguments, a file or stdin) → JSON lines",
        description="Texts come from arguments or --input (jsonl with a 'text' field and optional 'id', or plain "
        "lines). Output: one JSON object per input, in input order; a bad input line gives an object with an "
        "'error' field and the others are still processed. Exit code 0 when at least one item succeeded "
        "(or there was nothing to do), 1 when every item failed (or any failed with --strict), 2 on a usage/model "
        "error.",
    )
    predict.add_argument("artifact", help="artifact folder or Hugging Face Hub id")
    predict.add_argument("texts", nargs="*", help="texts to predict")
    predict.add_argument("--input", "-i", help="input file, or - for stdin")
    predict.add_argument("--output", "-o", help="output file (default: stdout)")
    predict.add_argument("--format", choices=FORMATS, default="auto", help="input format (auto: by first line)")
    predict.add_argument(
        "--encoding",
        default="auto",
        help="of --input: auto (default: a BOM, else UTF-8 if valid, else detected, e.g. CP949) or a codec name",
    )
    # Task options default to None (not given): the model fills in its defaults and refuses another task's options.
    predict.add_argument("--top-k", help="labels per text (default: 1), or 'all' (text classification)")
    predict.add_argument("--function-to-apply", help="default (softmax, or sigmoid for multi-label), softmax, "
                         "sigmoid, none (raw logits) (text classification)")
    predict.add_argument("--long-text",
                         help="texts over max_length tokens: truncate (default) or windows (text classification)")
    predict.add_argument("--pooling", help="how windows of a long text combine: mean (default) or max "
                         "(text classification)")
    predict.add_argument("--aggregation", help="none, simple (default), first, average, max (NER)")
    predict.add_argument("--stride", type=int, default=None,
                         help="overlap of long-text windows in tokens (NER; classification with --long-text windows)")
    predict.add_argument("--batch-size", type=int, default=32, help="texts per model call")
    predict.add_argument("--chunk-size", type=int, default=1024, help="lines read per model call (streaming)")
    predict.add_argument("--strict", action="store_true", help="exit 1 if any item failed")
    _add_model_options(predict)
    predict.set_defaults(func=run_predict)

    info = subparsers.add_parser("info", help="show an artifact's manifest: task, labels, variants, gates")
    info.add_argument("artifact", help="artifact folder or Hugging Face Hub id")
    info.add_argument("--json", action="store_true", help="print the manifest as JSON")
    info.add_argument("--verify", action="store_true",
                      help="also check every file's sha256 and that every passed variant loads and runs a probe text "
                           "(exit 1 if any fails)")
    info.set_defaults(func=run_info)

    from kolite.pack import register as register_pack

    register_pack(subparsers)
    _register_plugins(subparsers)
    for subparser in subparsers.choices.values():
        subparser.formatter_class = DefaultsHelpFormatter
    return parser


def _version() -> str:
    from kolite import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except KoliteError as exc:
        print(f"kolite {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # a plugin importing its heavy deps lazily, inside the command
        hint = INSTALL_HINTS.get(args.command)
        if hint is None:
            raise
        print(f"kolite {args.command}: missing module {exc.name!r}. Install it with: {hint}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `kolite predict ... | head`
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
