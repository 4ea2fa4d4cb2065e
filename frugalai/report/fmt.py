"""Numbers as the people who sign read them: plain units, no scientific notation, sensible
rounding, the decimal mark of the language. One module, so the summary, the tables, the charts
and the CLI all print a figure the same way (and a test can read them back: :func:`parse`).

Rounding: three significant digits, never fewer than the integer part (1,234 not 1,230 and
not 1.23e+03); below 0.001 the figure is shown as "< 0.001" of its unit, because a
mayor's office reads 6e-06 kWh as "nothing" anyway and a smaller unit says it better (callers
pick the unit with :func:`energy`).

>>> num(1234.5678)
'1,235'
>>> num(0.012345)
'0.0123'
>>> num(1234.5678, "fr") == "1\u202f235"   # narrow no-break space between thousands
True
>>> num(2.5, "fr")
'2,5'
>>> energy(0.5)      # Wh
'0.5 Wh'
>>> energy(21900.0)  # Wh -> kWh
'21.9 kWh'
"""

from __future__ import annotations

import math
import re
from typing import Optional

#: the narrow no-break space French uses between thousands (and before a unit)
NNBSP = "\u202f"
TINY = 0.001


def num(x: float, lang: str = "en", digits: int = 3, tiny: float = TINY) -> str:
    """``x`` to ``digits`` significant digits (all of its integer digits), plain notation.

    >>> num(0.0)
    '0'
    >>> num(-3.14159)
    '-3.14'
    >>> num(0.0000004)
    '< 0.001'
    >>> num(12.0)
    '12'
    >>> num(0.0000173, tiny=1e-9)   # the engineers' annex: plain, never 1.73e-05
    '0.0000173'
    """
    if x is None or not math.isfinite(x):
        return "-"
    if x == 0:
        return "0"
    if abs(x) < tiny:
        bound = f"{tiny:.{max(0, -math.floor(math.log10(tiny)))}f}"
        text = f"< {bound}" if x > 0 else f"> -{bound}"
        return text.replace(".", ",") if lang == "fr" else text
    magnitude = math.floor(math.log10(abs(x)))
    decimals = max(0, digits - 1 - magnitude)
    text = f"{round(x, decimals):,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if lang == "fr":
        text = text.replace(",", NNBSP).replace(".", ",")
    return text


def money(eur: float, lang: str = "en") -> str:
    """Euros with cents below 100 €, whole euros above.

    >>> money(3.014)
    '3.01 €'
    >>> money(1234.4, "fr") == "1\u202f234 €"
    True
    """
    if eur is None or not math.isfinite(eur):
        return "-"
    if 0 < abs(eur) < 0.005:
        return "< 0,01 €" if lang == "fr" else "< 0.01 €"
    text = f"{eur:,.2f}" if abs(eur) < 100 else f"{eur:,.0f}"
    if lang == "fr":
        text = text.replace(",", NNBSP).replace(".", ",")
    return f"{text} €"


def energy(wh: float, lang: str = "en", per: str = "") -> str:
    """Watt-hours: Wh below 1 kWh, kWh up to 10 MWh, then MWh (the units a bill uses; no
    mWh, which nobody who signs reads); ``per`` is appended (``/year``).

    >>> energy(0.0004)
    '< 0.001 Wh'
    >>> energy(2_500_000, per="/year")
    '2,500 kWh/year'
    """
    if wh is None or not math.isfinite(wh):
        return "-"
    a = abs(wh)
    if a == 0:
        unit, v = "Wh", 0.0
    elif a < 1000:
        unit, v = "Wh", wh
    elif a < 1e7:
        unit, v = "kWh", wh / 1000
    else:
        unit, v = "MWh", wh / 1e6
    return f"{num(v, lang)} {unit}{per}"


def mass_kg(kg: float, lang: str = "en", per: str = "") -> str:
    """kg CO2e below a tonne, in g below 1 kg (a gateway's footprint is grams to kilograms).

    >>> mass_kg(0.0123)
    '12.3 g CO2e'
    >>> mass_kg(4.56, per="/year")
    '4.56 kg CO2e/year'
    """
    if kg is None or not math.isfinite(kg):
        return "-"
    if abs(kg) < 1:
        return f"{num(kg * 1000, lang)} g CO2e{per}"
    return f"{num(kg, lang)} kg CO2e{per}"


def pct(share: float, lang: str = "en") -> str:
    """A share as a percentage; '< 0.001 %' for what is practically nothing.

    >>> pct(0.25)
    '25 %'
    >>> pct(0.000000001)
    '< 0.001 %'
    """
    return f"{num(share * 100, lang)} %"


_NUMBER = re.compile(r"(?<![\w.,])-?\d{1,3}(?:[,\u202f ]\d{3})*(?:[.,]\d+)?(?![\w])|"
                     r"(?<![\w.,])-?\d+(?:[.,]\d+)?(?![\w])")


def parse(text: str, lang: str = "en") -> list[float]:
    """Every number written in ``text`` by this module, back as floats (for the tests that
    compare a page with the JSON it came from).

    >>> parse("21.9 kWh/year and 1,235 €")
    [21.9, 1235.0]
    >>> parse("21,9 kWh/an et 1\u202f235 €", "fr")
    [21.9, 1235.0]
    """
    out: list[float] = []
    for m in _NUMBER.finditer(text):
        s = m.group(0)
        s = (s.replace("\u202f", "").replace(" ", "").replace(",", ".") if lang == "fr"
             else s.replace(",", ""))
        try:
            out.append(float(s))
        except ValueError:
            continue
    return out


def matches(value: float, shown: float, digits: int = 3) -> bool:
    """Whether ``shown`` is ``value`` as :func:`num` rounds it (any of the units it may be
    shown in: x1, x1000, /1000).

    >>> matches(21934.0, 21.9)
    True
    """
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    for v in (value, value * 1000, value / 1000, value * 100, value * 1e6, value / 1e6):
        if v == 0:
            if shown == 0:
                return True
            continue
        magnitude = math.floor(math.log10(abs(v)))
        decimals = max(0, digits - 1 - magnitude)
        if abs(round(v, decimals) - shown) <= 10 ** -decimals / 2 + 1e-12:
            return True
        if abs(round(v, 2) - shown) < 0.006:  # money: cents
            return True
        if abs(round(v) - shown) < 0.5 + 1e-9:
            return True
    return False


def optional(x: Optional[float], lang: str = "en") -> str:
    return "-" if x is None else num(x, lang)
