"""Go's time.Format layouts ("2006-01-02T15:04:05Z07:00"), for consul-template's ``timestamp``."""

from __future__ import annotations

import datetime as dt

RFC3339 = "2006-01-02T15:04:05Z07:00"

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _zone(t: dt.datetime, z: bool, colon: bool, seconds: bool, hours_only: bool) -> str:
    off = t.utcoffset() or dt.timedelta(0)
    total = int(off.total_seconds())
    if z and total == 0:
        return "Z"
    sign = "-" if total < 0 else "+"
    total = abs(total)
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    out = f"{sign}{h:02d}"
    if hours_only:
        return out
    out += (":" if colon else "") + f"{m:02d}"
    if seconds:
        out += (":" if colon else "") + f"{s:02d}"
    return out


_ZONES = [  # (layout chunk, z, colon, seconds, hours_only), longest first as Go matches them
    ("Z07:00:00", True, True, True, False), ("-07:00:00", False, True, True, False),
    ("Z070000", True, False, True, False), ("-070000", False, False, True, False),
    ("Z07:00", True, True, False, False), ("-07:00", False, True, False, False),
    ("Z0700", True, False, False, False), ("-0700", False, False, False, False),
    ("Z07", True, False, False, True), ("-07", False, False, False, True),
]


def go_format(t: dt.datetime, layout: str) -> str:
    out: list[str] = []
    i = 0
    n = len(layout)
    while i < n:
        rest = layout[i:]
        c = layout[i]
        if rest.startswith("January"):
            out.append(_MONTHS[t.month - 1])
            i += 7
        elif rest.startswith("Jan"):
            out.append(_MONTHS[t.month - 1][:3])
            i += 3
        elif rest.startswith("Monday"):
            out.append(_DAYS[t.weekday()])
            i += 6
        elif rest.startswith("Mon"):
            out.append(_DAYS[t.weekday()][:3])
            i += 3
        elif rest.startswith("MST"):
            name = t.tzname() or "UTC"
            if name.startswith(("+", "-")) or not name.isalpha():
                name = _zone(t, False, False, False, False)
            out.append(name)
            i += 3
        elif rest.startswith("2006"):
            out.append(f"{t.year:04d}")
            i += 4
        elif rest.startswith("002"):
            out.append(f"{t.timetuple().tm_yday:03d}")
            i += 3
        elif c == "0" and i + 1 < n and layout[i + 1] in "123456":
            d = layout[i + 1]
            v = {"1": t.month, "2": t.day, "3": (t.hour % 12) or 12, "4": t.minute, "5": t.second,
                 "6": t.year % 100}[d]
            out.append(f"{v:02d}")
            i += 2
        elif rest.startswith("15"):
            out.append(f"{t.hour:02d}")
            i += 2
        elif c == "1":
            out.append(str(t.month))
            i += 1
        elif rest.startswith("__2"):
            out.append(f"{t.timetuple().tm_yday:3d}")
            i += 3
        elif rest.startswith("_2") and not rest.startswith("_2006"):
            out.append(f"{t.day:2d}")
            i += 2
        elif c == "2":
            out.append(str(t.day))
            i += 1
        elif c == "3":
            out.append(str((t.hour % 12) or 12))
            i += 1
        elif c == "4":
            out.append(str(t.minute))
            i += 1
        elif c == "5":
            out.append(str(t.second))
            i += 1
        elif rest.startswith("PM"):
            out.append("PM" if t.hour >= 12 else "AM")
            i += 2
        elif rest.startswith("pm"):
            out.append("pm" if t.hour >= 12 else "am")
            i += 2
        elif c in "-Z" and any(rest.startswith(z[0]) for z in _ZONES):
            for chunk, z, colon, secs, hours in _ZONES:
                if rest.startswith(chunk):
                    out.append(_zone(t, z, colon, secs, hours))
                    i += len(chunk)
                    break
        elif c in ".," and i + 1 < n and layout[i + 1] in "09":
            d = layout[i + 1]
            j = i + 1
            while j < n and layout[j] == d:
                j += 1
            if j < n and layout[j].isdigit():
                out.append(c)
                i += 1
                continue
            digits = j - i - 1
            frac = f"{t.microsecond:06d}000"[:digits]
            if d == "9":
                frac = frac.rstrip("0")
                if frac:
                    out.append(c + frac)
            else:
                out.append(c + frac)
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)
