"""What encoding a text file came in, and its text.

Government users save CSV from Excel or export it from a platform: UTF-8 with or without the BOM Excel writes,
or GB18030/GBK (Excel's default on a Chinese Windows).  Decoding everything as UTF-8 answered such a file with
a ``UnicodeDecodeError`` and a 500.  Here the BOM decides first; otherwise charset-normalizer chooses among the
encodings ``ontology/import_profiles.yaml`` names (short GBK text is easily taken for Big5 when every code page
is allowed, so the candidates are the ones Chinese users actually have); bytes that are valid UTF-8 are taken as
UTF-8 at once, which keeps a large JSON Lines corpus as quick to read as before.  The encoding is returned with its
Chinese display name so that every message about the file can say how it was read.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from charset_normalizer import from_bytes

__all__ = ["DecodedText", "UndecodableFile", "decode_text"]

#: Display names, for messages: Python codec name → what users call it.
_DISPLAY = {"utf_8": "UTF-8", "utf_8_sig": "UTF-8（带 BOM）", "gb18030": "GB18030/GBK", "utf_16": "UTF-16"}
_BOMS = ((codecs.BOM_UTF8, "utf_8_sig"), (codecs.BOM_UTF16_LE, "utf_16"), (codecs.BOM_UTF16_BE, "utf_16"))


@dataclass(frozen=True)
class DecodedText:
    """The text of a file and the encoding it was read with (``encoding`` is a Python codec name)."""

    text: str
    encoding: str

    @property
    def encoding_name(self) -> str:
        return _DISPLAY.get(self.encoding, self.encoding.upper())


class UndecodableFile(ValueError):
    """No candidate encoding reads the bytes; the message names each encoding tried and the line it fails at."""


def _failing_line(data: bytes, encoding: str) -> str:
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return f"按 {_DISPLAY.get(encoding, encoding)} 读取第 {line} 行出错"
    return f"按 {_DISPLAY.get(encoding, encoding)} 可读"


def decode_text(data: bytes, candidates: tuple[str, ...] = ("utf_8", "gb18030")) -> DecodedText:
    """The text of ``data``: by its BOM, else the candidate charset-normalizer finds most coherent."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return DecodedText(data.decode(encoding), encoding)
            except UnicodeDecodeError:
                raise UndecodableFile(f"文件以 {_DISPLAY[encoding]} 的 BOM 开头，但{_failing_line(data, encoding)}") from None
    if not data:
        return DecodedText("", "utf_8")
    if "utf_8" in candidates:  # bytes that decode as strict UTF-8 are UTF-8 (GBK text almost never does); fast
        try:
            return DecodedText(data.decode("utf_8"), "utf_8")
        except UnicodeDecodeError:
            pass
    best = from_bytes(data, cp_isolation=list(candidates)).best()
    if best is None:
        tried = "；".join(_failing_line(data, c) for c in candidates)
        names = "、".join(_DISPLAY.get(c, c) for c in candidates)
        raise UndecodableFile(f"无法识别文件编码，应为 {names}（{tried}）")
    encoding = codecs.lookup(best.encoding).name.replace("-", "_")
    return DecodedText(str(best), "utf_8" if encoding == "utf_8" else encoding)
