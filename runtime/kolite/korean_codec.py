"""``kolite_cp949``: CP949 (Windows' Korean code page, UHC, a superset of EUC-KR) that also joins KS X 1001
composition sequences.

EUC-KR spells a syllable outside its 2,350 precomposed ones as HANGUL FILLER + initial + medial + final jamo
(KS X 1001:1998 Annex 3). Python's ``euc_kr`` codec joins them into the syllable; its ``cp949`` codec returns the
four jamo. Reading CP949 with this codec makes an EUC-KR file decode to the same text under ``--encoding auto``
(which picks CP949), ``cp949`` and ``euc-kr``. Importing this module registers the codec.
"""

from __future__ import annotations

import codecs
import re

__all__ = ["CP949"]

CP949 = "kolite_cp949"
# A KS X 1001 composition sequence: HANGUL FILLER, initial, medial, final (or filler) as compatibility jamo.
_COMPOSITION = re.compile("\u3164[\u3131-\u3164]{3}")


def _compose(match: re.Match[str]) -> str:
    # Python's euc_kr codec knows the composition tables; a sequence it refuses stays as the jamo it was.
    sequence = match.group()
    try:
        return sequence.encode("cp949").decode("euc_kr")
    except UnicodeError:
        return sequence


class _Cp949Decoder(codecs.IncrementalDecoder):
    """CP949 that joins KS X 1001 composition sequences, holding back a possible sequence cut by a chunk's end."""

    def __init__(self, errors: str = "strict") -> None:
        super().__init__(errors)
        self._inner = codecs.getincrementaldecoder("cp949")(errors)
        self._pending = ""

    def decode(self, input: bytes, final: bool = False) -> str:
        text = _COMPOSITION.sub(_compose, self._pending + self._inner.decode(input, final))
        self._pending = ""
        if not final:
            cut = text.rfind("\u3164", max(0, len(text) - 3))
            if cut >= 0 and all("\u3131" <= c <= "\u3164" for c in text[cut:]):
                text, self._pending = text[:cut], text[cut:]
        return text

    def reset(self) -> None:
        self._inner.reset()
        self._pending = ""

    def getstate(self) -> tuple[bytes, int]:
        buffered, flags = self._inner.getstate()
        return self._pending.encode("cp949") + buffered, flags

    def setstate(self, state: tuple[bytes, int]) -> None:
        # Decoded here but still held back: the inner decoder buffers at most one character's bytes.
        buffered, flags = state
        self._inner.setstate((b"", flags))
        self._pending = self._inner.decode(buffered)


def _cp949_codec(name: str) -> codecs.CodecInfo | None:
    if name != CP949:
        return None
    base = codecs.lookup("cp949")

    def decode(data: bytes, errors: str = "strict") -> tuple[str, int]:
        return _Cp949Decoder(errors).decode(bytes(data), final=True), len(data)

    return codecs.CodecInfo(
        base.encode,
        decode,
        name=CP949,
        incrementalencoder=base.incrementalencoder,
        incrementaldecoder=_Cp949Decoder,
        streamwriter=base.streamwriter,
    )


codecs.register(_cp949_codec)
