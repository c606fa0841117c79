"""Yes/no options given alone: ``--overwrite`` and ``--loop.keep_outputs`` mean yes, wherever they stand.

jsonargparse reads ``--overwrite true`` and, for an option made with ``ActionYesNo``,
``--overwrite`` at the end; but a yes/no option followed by a positional
(``lit_al label --overwrite RUN FILE``) takes the positional as its value, and a boolean key of a
class or dataclass group (``--loop.keep_outputs``, ``--trainer.benchmark``) always wants one.
Before parsing, such an option not followed by a yes/no word is written ``--option=true``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Optional

if TYPE_CHECKING:
    from jsonargparse import ArgumentParser

#: The words jsonargparse reads as a yes/no value.
YES_NO_WORDS = frozenset({"true", "false", "yes", "no"})
_BOOLEAN_HINTS = (bool, Optional[bool])


def yes_no_options(parser: ArgumentParser) -> set[str]:
    """Every option string of ``parser`` (and of its subcommands) that takes a yes/no value."""
    from jsonargparse import ActionYesNo

    found: set[str] = set()
    for action in parser._actions:
        if isinstance(action, ActionYesNo) or getattr(action, "_typehint", None) in _BOOLEAN_HINTS:
            found.update(action.option_strings)
        for sub in (getattr(action, "choices", None) or {}).values() if hasattr(action, "_name_parser_map") else ():
            found |= yes_no_options(sub)
    return found


def with_bare_flags(parser: ArgumentParser, argv: list[str], also: Iterable[str] = ()) -> list[str]:
    """``argv`` with each yes/no option that has no yes/no word after it written ``--option=true``.

    ``also`` names more yes/no options the parser cannot list (the boolean keys of a subclass group).
    """
    flags = yes_no_options(parser) | set(also)
    out: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--":  # what follows is positional
            return out + argv[i:]
        following = argv[i + 1] if i + 1 < len(argv) else None
        bare = following is None or following.lower() not in YES_NO_WORDS
        out.append(f"{arg}=true" if arg in flags and bare else arg)
    return out
