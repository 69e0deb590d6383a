"""Uniform draws in [0, 1) determined by a text, cheap to start: how a random search draws
a trial's values from its seed, the trial's number and the attempt."""

from __future__ import annotations

import hashlib
import struct

_WORDS = struct.Struct("<8Q").unpack  # a 64-byte digest as eight 64-bit words
_SCALE = 2.0 ** -53


class SeededDraws:
    """``random()`` as :class:`random.Random` gives it, every draw determined by ``text``:
    floats of 53 random bits cut from BLAKE2b digests of the text and a block number,
    eight a digest.

    A random search starts a generator for each attempt at each trial and draws a handful
    of values from it. Seeding a ``random.Random`` costs more than all the rest of the
    draw (it sets up a state of 624 words); one hash of a few bytes does not.
    """

    __slots__ = ("_block", "_left", "_text")

    def __init__(self, text: str) -> None:
        self._text = text.encode()
        self._block = 0
        self._left: list[int] = []

    def random(self) -> float:
        """The next float in [0, 1)."""
        if not self._left:
            digest = hashlib.blake2b(b"%d:%s" % (self._block, self._text)).digest()
            self._left = list(_WORDS(digest))
            self._block += 1
        return (self._left.pop() >> 11) * _SCALE
