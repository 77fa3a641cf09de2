"""Text normalization shared by the context-loss judge and the claims layer.

Two answers state the same value when their normalized forms carry the same token. The
normal form folds what real models vary without changing meaning:

- width and case (NFKC, casefold); every dash-like character (U+2010-2015, U+2212, ...)
  becomes "-"; markdown emphasis, headings, bullets and list markers (1. 2. 3.) go;
- Chinese numerals become digits: 四八二一三 -> 48213, 四万八千二百一十三 -> 48213,
  三千五 -> 3500, 两万五 -> 25000, 叁仟伍佰 -> 3500, 百分之五 -> 5%, 两三天 -> 2-3天,
  3.5千元 -> 3500元, 10万 -> 100000 (but 105千卡 stays kilocalories); a lone numeral
  is converted only before a counter word (三天), so words such as 一般, 统一 and
  一次性 stay words;
- English number words (five, twenty-one, two hundred) become digits; ordinals lose
  their suffix (18th -> 18); thousands separators and trailing .00 go;
- dates become M月D日 (with Y年 when a year is given): 2026-05-18, May 18th, 18 May,
  05月18号 -> 5月18日; clock times become H:MM on a 24-hour clock when the half of
  the day is said: 9 am, 9:00, 上午九点 -> 9:00; 9 pm, 晚上九点 -> 21:00;
- percentages become N% (fifty percent, 50 per cent); a phone number's country code
  (+86, 0086) goes; digit groups written apart (4091 7352, 138 1234 5678) join.

`normalize` is idempotent: the normal form of a normal form is itself.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# -- Chinese numerals ------------------------------------------------------------------

_FINANCIAL = str.maketrans("壹贰貳叁參肆伍陆陸柒捌玖拾佰仟萬億", "一二二三三四五六六七八九十百千万亿")
_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000}
_BIG = {"万": 10_000, "亿": 100_000_000}
_NUMERAL_CHARS = "零〇一二两三四五六七八九十百千万亿"
_NUMERAL_RUN = re.compile(f"[{_NUMERAL_CHARS}]+")
_COUNTERS = set("个天年月日号位次件元块岁点分秒周张条本份人家层楼间台辆瓶杯晚夜倍期项种折成角")
_WEEKDAY_LEADS = ("周", "期", "拜")
_NOT_A_COUNT = ("一次性", "一点儿", "一点点", "一天到晚", "一年四季", "一周年")  # words, not numbers
_STOPS = set(",.;:!?，。；：！？、 \n)）")
_TIME_OF_DAY = ("上午", "早上", "早晨", "凌晨", "中午", "下午", "晚上", "傍晚", "夜里", "夜间")
_APPROX_PAIRS = {"一两": "1-2", "两三": "2-3", "二三": "2-3", "三四": "3-4", "四五": "4-5", "五六": "5-6",
                 "六七": "6-7", "七八": "7-8", "八九": "8-9"}
_PERCENT_ZH = re.compile(f"百分之([{_NUMERAL_CHARS}点\\d.]+)")
_ARABIC_TIMES_UNIT = re.compile(r"(\d+(?:\.\d+)?)([十百千万亿]+)(?![卡克米瓦])")


def _positional(run: str) -> int | None:
    """Value of a numeral written with units (三百二十, 四万八千二百一十三, 三千五); None if malformed."""
    total, section, digit = 0, 0, None
    last_unit, zero_seen = 0, False
    for ch in run:
        if ch in "零〇":
            zero_seen = True  # a place holder: 一百零五 = 105
            continue
        if ch in _DIGITS:
            if digit is not None:
                return None  # two digits in a row inside a positional number
            digit = _DIGITS[ch]
        elif ch in _UNITS:
            section += (1 if digit is None else digit) * _UNITS[ch]
            last_unit, digit, zero_seen = _UNITS[ch], None, False
        else:  # 万 / 亿
            section += digit or 0
            if section == 0:
                return None
            total += section * _BIG[ch]
            last_unit, section, digit, zero_seen = _BIG[ch], 0, None, False
    if digit is not None and last_unit >= 100 and not zero_seen:
        digit *= last_unit // 10  # a spoken tail: 三千五 = 3500, 两万五 = 25000, 一百五 = 150
    return total + section + (digit or 0)


def _numeral(match: re.Match[str]) -> str:
    run = match.group(0)
    text, start, end = match.string, match.start(), match.end()
    after = text[end:end + 1]
    if start > 0 and text[start - 1].isdigit() and all(ch in _UNITS or ch in _BIG for ch in run):
        return run  # 105千卡, 3.5千: handled with the digits before them
    if any(text.startswith(word, start) for word in _NOT_A_COUNT):
        return run
    if len(run) == 1 and text[start - 1:start] in _WEEKDAY_LEADS and after not in _COUNTERS:
        return run  # 周四, 星期四: a weekday name, not a number (每周三次 is three a week)
    if len(run) == 1 and run in _DIGITS:
        standalone = run != "一" and (not after or after in _STOPS) and text[start - 1:start] not in "之第统唯"
        if after not in _COUNTERS and not standalone:
            return run  # 一般, 统一, 之一: a word, not a number
        if run == "一" and after == "晚" and re.match(r"\s*[\d零〇一二两三四五六七八九十]", text[end + 1:end + 3]):
            return run  # 前一晚10点: the evening before, not one night
        if run == "一" and after == "点" and not text[max(0, start - 2):start] in _TIME_OF_DAY:
            return run  # 有一点: a little, not one o'clock
    if len(run) == 2 and run in _APPROX_PAIRS and (after in _COUNTERS or after in "十百千万"):
        return _APPROX_PAIRS[run]
    if any(ch in _UNITS or ch in _BIG for ch in run):
        value = _positional(run)
        return run if value is None else str(value)
    return "".join(str(_DIGITS[ch]) for ch in run)


def _percent_zh(match: re.Match[str]) -> str:
    inner = match.group(1).replace("点", ".")
    inner = _NUMERAL_RUN.sub(lambda m: str(_positional(m.group(0)) or "".join(
        str(_DIGITS.get(c, "")) for c in m.group(0))) if any(c in _UNITS for c in m.group(0))
        else "".join(str(_DIGITS[c]) for c in m.group(0) if c in _DIGITS), inner)
    return f"{inner}%"


def _times_unit(match: re.Match[str]) -> str:
    value = float(match.group(1))
    for ch in match.group(2):
        value *= _UNITS.get(ch) or _BIG[ch]
    return _number_text(value)


def _number_text(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.6f}".rstrip("0").rstrip(".")


# -- English number words ----------------------------------------------------------------

_SMALL = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i >= 2}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}
_WORD = "|".join(sorted([*_SMALL, *_TENS, *_SCALES], key=len, reverse=True))
_NUMBER_WORDS = re.compile(rf"\b(?:{_WORD})(?:(?:\s+and\s+|[\s-]+)(?:{_WORD}))*\b")
_ONE_AS_WORD_BEFORE = {"of", "more", "another", "by", "who", "that", "which", "else", "thing", "day", "way"}
_ONE_AS_WORD_AFTER = {"no", "any", "each", "every", "the", "this", "that", "which", "some", "someone", "anyone", "only"}


def _words_value(words: list[str]) -> int | None:
    total, current = 0, 0
    for word in words:
        if word in _SMALL:
            current += _SMALL[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        else:
            total += max(current, 1) * _SCALES[word]
            current = 0
    return total + current


def _number_words(match: re.Match[str]) -> str:
    words = [w for w in re.split(r"[\s-]+", match.group(0)) if w and w != "and"]
    if words[0] in _SCALES:
        return match.group(0)  # "hundreds of", "thousand" alone: not a count
    if words == ["one"]:
        text = match.string
        before = text[:match.start()].split()[-1:] or [""]
        after = text[match.end():].split()[:1] or [""]
        if before[0] in _ONE_AS_WORD_AFTER or after[0].strip(".,;:!?") in _ONE_AS_WORD_BEFORE:
            return match.group(0)
        if not after[0] or not after[0][0].isalpha():
            return match.group(0)  # "the premium one.": a pronoun
    if len(words) >= 3 and all(w in _SMALL and _SMALL[w] < 10 for w in words):
        return "".join(str(_SMALL[w]) for w in words)  # five-eight-three: digits read one by one
    if len(words) >= 2 and words[0] in _SMALL and words[1] not in _SCALES:
        # "six thirty", "seven forty-five": no count reads a small number then another; a clock does
        hour, minute = _SMALL[words[0]], _words_value(words[1:])
        if 1 <= hour <= 12 and minute is not None and 10 <= minute < 60:
            return f"{hour}:{minute:02d}"
    value = _words_value(words)
    return match.group(0) if value is None else str(value)


# -- dates, times, percentages -------------------------------------------------------------

_MONTHS = {"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9,
           "oct": 10, "nov": 11, "dec": 12}
_MONTH = (r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
          r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_ISO_DATE = re.compile(r"\b(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\b")
_ZH_DATE = re.compile(r"(?:(\d{4})\s*年\s*)?0*(\d{1,2})\s*月\s*0*(\d{1,2})\s*[日号號]")
_EN_MONTH_DAY = re.compile(rf"\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?!\s*[:%])(?:,?\s+(\d{{4}})\b)?")
_EN_DAY_MONTH = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\b(?:,?\s+(\d{{4}})\b)?")
_ORDINAL = re.compile(r"\b(\d+)(?:st|nd|rd|th)\b")
_ORDINAL_UNITS = ("first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
                  "fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth").split()
_ORDINAL_WORDS = {**{w: i + 1 for i, w in enumerate(_ORDINAL_UNITS)}, "twentieth": 20, "thirtieth": 30,
                  **{f"twenty{sep}{w}": 21 + i for i, w in enumerate(_ORDINAL_UNITS[:9]) for sep in ("-", " ")},
                  "thirty-first": 31, "thirty first": 31}
_ORDINAL_WORD = "|".join(sorted(_ORDINAL_WORDS, key=len, reverse=True))
_ORDINAL_BEFORE_MONTH = re.compile(rf"\b(?:the\s+)?({_ORDINAL_WORD})(?=\s+of\s+{_MONTH}\b)")
_ORDINAL_AFTER_MONTH = re.compile(rf"\b{_MONTH}\s+(?:the\s+)?({_ORDINAL_WORD})\b")
_NOON = re.compile(r"\b(noon|midday|midnight)\b")
_NANP_TRUNK = re.compile(r"(?<![\d+])\b1[\s.-](?=\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b)")  # 1-800-555-0199
_AMPM = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s*([ap])\.?\s?m\b\.?")
_CLOCK = re.compile(r"(?<![\d.])0?(\d{1,2}):(\d{2})(?![\d])")
_HALF = re.compile(r"\bone and a half\b|\bhalf an hour\b|\ba half hour\b|\ban hour and a half\b")
_PAST = re.compile(r"(?<![\d:])\b(half|quarter|\d{1,2}) (past|to) (\d{1,2})\b(?!:)")
_ZH_WEEKDAY_WORD = re.compile(r"(?:星期|礼拜)([一二三四五六日天])")
_DMY = re.compile(r"(?<![\d.:/])(\d{1,2})([./])(\d{1,2})\2(\d{4})(?!\d|\.\d)")
_DAYPART_EN = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s*(?:o'?clock\s*)?(?:in the (morning|afternoon|evening)|(at night|tonight))")
_DISCOUNT = re.compile(r"(?<![\d.])(\d)(\d)?折")
_OCLOCK = re.compile(r"\b(\d{1,2})\s*o'?clock\b")
_ZH_TIME = re.compile(r"(上午|早上|早晨|凌晨|中午|下午|晚上|傍晚|夜里|夜间|晚)?\s*(\d{1,2})\s*[点點时](?:\s*(半|一刻|三刻|(\d{1,2})\s*分?)|(?!\d|\.\d))")
_ZH_TIME_RANGE = re.compile(r"(上午|早上|早晨|凌晨|中午|下午|晚上|傍晚|夜里|夜间)(\s*\d{1,2}\s*[点點时](?:半|\d{1,2}分?)?)(\s*(?:到|至|-|~)\s*)(?=\d{1,2}\s*[点點时])")
_PM_WORDS = ("下午", "晚上", "傍晚", "夜里", "夜间", "晚")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:%|percent\b|per\s+cent\b)")


def _date(year: str | None, month: int, day: int) -> str:
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return ""
    return (f"{int(year)}年" if year else "") + f"{month}月{day}日"


def _iso_date(m: re.Match[str]) -> str:
    return _date(m.group(1), int(m.group(2)), int(m.group(3))) or m.group(0)


def _zh_date(m: re.Match[str]) -> str:
    return _date(m.group(1), int(m.group(2)), int(m.group(3))) or m.group(0)


def _month_day(m: re.Match[str]) -> str:
    return _date(m.group(3), _MONTHS[m.group(1)[:3]], int(m.group(2))) or m.group(0)


def _day_month(m: re.Match[str]) -> str:
    return _date(m.group(3), _MONTHS[m.group(2)[:3]], int(m.group(1))) or m.group(0)


def _clock(hour: int, minute: int) -> str:
    return f"{hour}:{minute:02d}" if 0 <= hour <= 24 and 0 <= minute < 60 else ""


def _ampm(m: re.Match[str]) -> str:
    hour, minute = int(m.group(1)), int(m.group(2) or 0)
    if not 1 <= hour <= 12:
        return m.group(0)
    hour = hour % 12 + (12 if m.group(3) == "p" else 0)
    return _clock(hour, minute) or m.group(0)


def _past(m: re.Match[str]) -> str:
    minutes = 30 if m.group(1) == "half" else 15 if m.group(1) == "quarter" else int(m.group(1))
    hour = int(m.group(3))
    if minutes >= 60 or not 1 <= hour <= 12:
        return m.group(0)
    if m.group(2) == "to":
        hour, minutes = (hour - 1) or 12, 60 - minutes
    return f"{hour}:{minutes:02d}"


def _dmy(m: re.Match[str]) -> str:
    first, second = int(m.group(1)), int(m.group(3))
    day_first = second <= 12 and (first > 12 or m.group(2) == ".")  # 07.06.2025 is 7 June; 06/07/2025 is June 7
    month, day = (second, first) if day_first else (first, second)
    return _date(m.group(4), month, day) or m.group(0)


def _daypart_en(m: re.Match[str]) -> str:
    hour, minute = int(m.group(1)), int(m.group(2) or 0)
    if not 1 <= hour <= 12:
        return m.group(0)
    afternoon = m.group(3) in ("afternoon", "evening") or bool(m.group(4))
    return _clock(hour % 12 + (12 if afternoon else 0), minute) or m.group(0)


_ZH_SENTENCE_END = re.compile(r"[。!?！？;；\n]")


def _zh_afternoon_carries(text: str) -> str:
    """原来是下午三点，后来改成了四点半: a bare hour after an afternoon time in the same
    sentence is in the afternoon too."""
    if "点" not in text or not any(word in text for word in _PM_WORDS):
        return text
    out, last, pm_until = [], 0, -1
    for m in _ZH_TIME.finditer(text):
        part = m.group(1)
        if part:
            pm_until = m.end() if part in _PM_WORDS else -1
        elif pm_until >= 0 and not _ZH_SENTENCE_END.search(text, pm_until, m.start()) and int(m.group(2)) < 12:
            out.append(text[last:m.start()] + "下午")
            last = m.start()
            pm_until = m.end()
    return "".join(out) + text[last:]


def _zh_time(m: re.Match[str]) -> str:
    part, hour = m.group(1), int(m.group(2))
    tail = m.group(3)
    minute = {"半": 30, "一刻": 15, "三刻": 45}.get(tail) or (int(m.group(4)) if m.group(4) else 0)
    if part in _PM_WORDS and hour < 12:
        hour += 12
    elif part == "中午" and hour < 6:
        hour += 12
    elif (part in _PM_WORDS or part == "凌晨") and hour == 12:
        hour = 0  # 晚上12点, 凌晨12点: midnight
    clock = _clock(hour, minute)
    return clock if clock else m.group(0)


# -- layout, separators, phones ------------------------------------------------------------

_DASHES = re.compile("[\u2010-\u2015\u2212\u2043\ufe58\ufe63\uff0d]")
_MARKUP = re.compile(r"\*\*|__|`+|~~")
_HEADING = re.compile(r"^\s*#{1,6}\s+", re.M)
_BULLET = re.compile(r"^\s*(?:[-*+•·▪●]|\d{1,2}[.)]|[(（]\d{1,2}[)）])\s+|^\s*\d{1,2}、", re.M)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_TRAILING_ZEROS = re.compile(r"(?<![\d.])(\d+)\.(\d*?)0+(?!\d|\.\d)")
_COUNTRY_CODE = re.compile(r"(?<!\d[\s-])(?:\(\s*)?(?:\+|\b00)(?:86|852|853|886|1|44|81|82|65|61|49|33)(?:\s*\))?[\s-]?(?=\(?\d)")
_SLASH_DATE = re.compile(r"(?<![\d/.])(\d{1,2})/(1[3-9]|2\d|3[01])(?![\d/])")
_SCALED = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s?([km])\b")
_GROUPS = re.compile(r"(?<![\d.-])(?<!\d:)\d{2,4}(?:(?:\s|-)\d{3,4}){2,3}(?![\d.:])|(?<![\d.-])(?<!\d:)\d{3,4} \d{3,4}(?![\d.:-])")
_SPACE = re.compile(r"\s+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _trailing_zeros(m: re.Match[str]) -> str:
    return m.group(1) + (f".{m.group(2)}" if m.group(2) else "")


def _join_groups(m: re.Match[str]) -> str:
    digits = re.sub(r"[\s-]", "", m.group(0))
    return digits if len(digits) >= 6 else m.group(0)


@lru_cache(maxsize=65536)
def normalize(text: str) -> str:
    """The comparable form of a text (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():  # Kraków -> Krakow; CJK has no combining marks to lose
        text = "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))
        text = unicodedata.normalize("NFC", text)
    text = _DASHES.sub("-", text).casefold()
    text = _MARKUP.sub("", text)
    text = _HEADING.sub("", text)
    text = _BULLET.sub("", text)
    text = text.translate(_FINANCIAL)
    text = _PERCENT_ZH.sub(_percent_zh, text)
    text = _NUMERAL_RUN.sub(_numeral, text)
    text = _THOUSANDS.sub("", text)
    text = _ARABIC_TIMES_UNIT.sub(_times_unit, text)
    text = re.sub(r"(\d)\s*圆", r"\1元", text)
    text = re.sub(r"(\d+)元(\d)角(?:(\d)分)?", lambda m: f"{m.group(1)}.{m.group(2)}{m.group(3) or ''}元", text)
    text = re.sub(r"(\d+)块(\d)(?:毛|角)?(?:(\d)分?)?(?![\d.钱])", lambda m: f"{m.group(1)}.{m.group(2)}{m.group(3) or ''}元", text)
    text = _ZH_WEEKDAY_WORD.sub(lambda m: "周" + ("日" if m.group(1) == "天" else m.group(1)), text)
    text = _HALF.sub(lambda m: {"one and a half": "1.5", "half an hour": "30 minutes", "a half hour": "30 minutes",
                                 "an hour and a half": "1.5 hours"}[m.group(0)], text)
    text = _ORDINAL_BEFORE_MONTH.sub(lambda m: str(_ORDINAL_WORDS[m.group(1)]), text)  # the third of May
    text = _ORDINAL_AFTER_MONTH.sub(lambda m: f"{m.group(1)} {_ORDINAL_WORDS[m.group(2)]}", text)  # May third
    text = _NOON.sub(lambda m: "0:00" if m.group(1) == "midnight" else "12:00", text)
    text = _NUMBER_WORDS.sub(_number_words, text)
    text = _PAST.sub(_past, text)
    text = _ISO_DATE.sub(_iso_date, text)
    text = _DMY.sub(_dmy, text)
    text = _ZH_DATE.sub(_zh_date, text)
    text = _SLASH_DATE.sub(lambda m: _date(None, int(m.group(1)), int(m.group(2))) or m.group(0), text)
    text = _EN_MONTH_DAY.sub(_month_day, text)
    text = _EN_DAY_MONTH.sub(_day_month, text)
    text = _ORDINAL.sub(r"\1", text)
    text = _DAYPART_EN.sub(_daypart_en, text)
    text = _AMPM.sub(_ampm, text)
    text = _OCLOCK.sub(r"\1:00", text)
    text = _ZH_TIME_RANGE.sub(r"\1\2\3\1", text)  # 下午2点到6点: the second time is in the afternoon too
    text = _ZH_TIME.sub(_zh_time, _zh_afternoon_carries(text))
    text = _CLOCK.sub(lambda m: _clock(int(m.group(1)), int(m.group(2))) or m.group(0), text)
    text = _PERCENT.sub(r"\1%", text)
    text = _DISCOUNT.sub(lambda m: f"{m.group(1)}{m.group(2) or '0'}%折", text)  # 五折 = pay 50%
    text = _SCALED.sub(lambda m: _number_text(float(m.group(1)) * (1000 if m.group(2) == "k" else 1_000_000))
                       if m.string[max(0, m.start() - 1):m.start()] in "$¥€£" and m.start() > 0 or m.group(2) == "k"
                       else m.group(0), text)
    text = _TRAILING_ZEROS.sub(_trailing_zeros, text)
    text = _COUNTRY_CODE.sub("", text)
    text = _NANP_TRUNK.sub("", text)
    text = _GROUPS.sub(_join_groups, text)
    return _SPACE.sub(" ", text).strip()


def _is_word_char(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


_SEPARATOR = r"[\s\-·]?"


@lru_cache(maxsize=65536)
def value_pattern(normalized_value: str) -> re.Pattern[str] | None:
    """A normalized value as a whole-token pattern that tolerates how models space it:
    a dash, space or nothing where the value has one or where letters meet digits
    (QX-48213, QX 48213, QX48213), and, for long digit runs, spaces or dashes between
    groups (4091 7352 for 40917352)."""
    value = normalized_value.strip()
    if not value:
        return None
    parts: list[str] = []
    long_digits = sum(ch.isdigit() for ch in value) >= 5
    previous = ""
    for ch in value:
        if ch in " -":
            if parts and parts[-1] != _SEPARATOR:
                parts.append(_SEPARATOR)
            previous = ch
            continue
        if previous and previous not in " -" and parts and parts[-1] != _SEPARATOR:
            letter_digit = previous.isalpha() != ch.isalpha() and previous.isalnum() and ch.isalnum()
            if letter_digit or (long_digits and previous.isdigit() and ch.isdigit()):
                parts.append(_SEPARATOR)
        parts.append(re.escape(ch))
        previous = ch
    body = "".join(parts)
    left = r"(?<![0-9a-z])" if _is_word_char(value[0]) else ""
    right = r"(?![0-9a-z])" if _is_word_char(value[-1]) else ""
    if value[-1].isdigit():
        right = r"(?!\d|\.\d)"  # 48213 is not inside 48213.5; a unit may follow (4.6kg)
    if value[0].isdigit():
        left = r"(?<![0-9a-z])(?<!\d\.)"
    return re.compile(left + body + right)


def contains(normalized_text: str, normalized_value: str) -> bool:
    """Whether a normalized text states a normalized value as a whole token.

    ASCII letters and digits need a boundary (48213 is not inside 148213, "ann" not in
    "anna"); CJK text has no spaces, so a CJK edge needs none. Separators inside the
    value may be written another way (see `value_pattern`).
    """
    pattern = value_pattern(normalized_value)
    return bool(pattern and pattern.search(normalized_text))


def compact(normalized_value: str) -> str:
    """One key per value however it is spaced: QX-48213, qx 48213 and qx48213 -> qx48213."""
    return re.sub(r"(?<=[0-9a-z])[\s\-]+(?=[0-9a-z])", "", normalized_value)


def numbers(normalized_text: str) -> frozenset[str]:
    """The numbers a normalized text states (dates and amounts included, as digit strings)."""
    return frozenset(_NUMBER.findall(normalized_text))
