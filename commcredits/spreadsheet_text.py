"""Text from input in the files finance users open in a spreadsheet (the usage report's CSV and
XLSX, the audit journal's CSV): shown, never run.

A spreadsheet takes a cell that starts with `=`, `+`, `-` or `@` for a formula (`=HYPERLINK(...)`
sends the reader's data away, `=cmd|...` starts programs), and one that starts with a tab or a
carriage return is read the same way once the spreadsheet strips that first character. OWASP's
advice for CSV ("CSV injection") is to put a single quote in front of such a cell: the
spreadsheet then shows it as text. The XLSX export marks such a cell as text with Excel's quote
prefix instead (`commcredits.usage_export`), so it shows the text as typed.

Only text that came from input goes through here (usage ids, user names, conference ids, number
types, organization ids): the numbers we write ourselves (amounts, minutes, positions, hashes)
are not attacker-controlled and a leading `-` on one is a real minus, which a quote would turn
into text no one can sum. One kind of input is left as it is although it starts with `+`: a
phone number in E.164 form (`+14255550100`), digits only, which no spreadsheet can turn into a
function call or a link; quoted, every Caller and Destination Number would read `'+1425...`.
A spreadsheet may still show such a number without its `+` (as a number): the XLSX export, for
people, writes it as a text cell. NUL and the other invisible control characters are dropped
(`cell_text`), in both formats.
"""

import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PHONE_NUMBER = re.compile(r"\+[0-9]{1,15}", re.ASCII)  # E.164: a plus and at most 15 digits
_NOT_SHOWN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")  # C0 controls but tab, line feed, carriage return


def starts_a_formula(text: str) -> bool:
    """Whether a spreadsheet would read `text` as a formula (an E.164 phone number is only a number)."""
    return text.startswith(FORMULA_STARTS) and not _PHONE_NUMBER.fullmatch(text)


def cell_text(text: str) -> str:
    """`text` without the control characters no spreadsheet shows (NUL and the other C0 controls
    but tab, line feed and carriage return): a workbook cannot hold them (XML 1.0), some CSV
    readers stop at a NUL, and one hidden in front of a formula must not hide the formula."""
    return _NOT_SHOWN.sub("", text)


def csv_text(text: str) -> str:
    """`text` from input as a CSV cell: `cell_text`, quoted with `'` if it would be a formula."""
    text = cell_text(text)
    return "'" + text if starts_a_formula(text) else text
