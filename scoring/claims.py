"""Claims: what an answer asserts, in canonical form, in Chinese and English.

The first layer of both quality judges. From a normalized answer (`scoring.normalize`)
it reads typed claims:

- numbers with their kind of unit (days, hours, people, money, percent, bare ...), so
  "arrives in 3 days" and "arrives in 72 hours" do not clash while 3 days and 5 days do;
- dates (M月D日), clock times (H:MM), weekdays (Friday / 周五 / 星期五 / 礼拜五),
  months, identifiers (QX-48213 however it is spaced) and long digit strings (phones,
  accounts);
- the answer's polarity when it opens with yes or no (是的 / 可以 / 不可以 / No, ...);
- members of closed sets a model may swap (a product tier, a room type, a seat class,
  a size, a colour, a direction, today / tomorrow, before / after, email / phone ...).

Two answers conflict (`conflict`) when they state claims of the same kind and neither
side's values include the other's (3 days vs 5 days, Friday vs Monday, yes vs no), or
when they read the same except for a negation (refundable / not refundable, 会 / 不会).
An answer that states more (a detail the other leaves out) does not conflict. No
conflict is not evidence of sameness: the layers after this one decide the rest.
"""

from __future__ import annotations

import difflib
import operator
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Mapping

from scoring.normalize import compact, normalize

_WEEKDAYS = {
    "monday": 1, "mon": 1, "tuesday": 2, "tue": 2, "tues": 2, "wednesday": 3, "wed": 3,
    "thursday": 4, "thu": 4, "thur": 4, "thurs": 4, "friday": 5, "fri": 5, "saturday": 6, "sunday": 7,
}
_ZH_WEEKDAYS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "日": 7, "天": 7, "末": 0,
                "1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "6": 6, "7": 7}
_WEEKDAY = re.compile(r"\b(" + "|".join(sorted(_WEEKDAYS, key=len, reverse=True)) + r")\b\.?")
_ZH_WEEKDAY = re.compile(r"(?:星期|礼拜|周)([一二三四五六日天1-7])")
_MONTH_NAMES = {"january": 1, "february": 2, "march": 3, "april": 4, "june": 6, "july": 7, "august": 8,
                "september": 9, "october": 10, "november": 11, "december": 12}
_MONTH = re.compile(r"\b(" + "|".join(_MONTH_NAMES) + r")\b|(?<![\d年])(\d{1,2})月(?!\d{1,2}日)(?!份?内)")
_DATE = re.compile(r"(?:(\d{4})年)?(\d{1,2})月(\d{1,2})日")
_TIME = re.compile(r"(?<![\d.])(\d{1,2}):(\d{2})(?!\d)")
_IDENT = re.compile(r"(?<![0-9a-z])([a-z]{1,4})-?(\d{3,})(?![0-9a-z])")
_MONEY = re.compile(r"(?:(?:\$|¥|€|£|usd|rmb|cny|人民币)\s*(\d+(?:\.\d+)?))|(?:(\d+(?:\.\d+)?)\s*(?:元|块|dollars?\b|bucks\b|usd\b|rmb\b|yuan\b|euros?\b))")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)%")
_RANGE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:-|~|to|到|至)\s*(?=\d)")
_NUMBER_UNIT = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+|[\u4e00-\u9fff]{1,4})?")
_DAYS = {"second": 1 / 86400, "minute": 1 / 1440, "hour": 1 / 24, "day": 1.0, "week": 7.0, "month": 30.0, "year": 365.0}
_REFUSAL = re.compile(
    r"\bi (?:don't|do not|didn't|did not) (?:have|know|see|find)\b|\bno record\b|\b(?:haven't|have not|didn't|did not) "
    r"(?:told|mentioned|given|provided|shared|said)\b|\bdon't believe you(?:'ve| have)?\b|\b(?:can't|cannot|could not|"
    r"couldn't|unable to) (?:find|recall|locate|see)\b|\bnot (?:able|sure) (?:to|i can) (?:find|recall)\b|"
    r"不记得|没有(?:您的|你的)?\S{0,6}(?:信息|记录)|(?:还)?没有?(?:告诉|提到|提供|留|说)|无法(?:查到|找到|确认|查询)|没有找到|没找到|"
    r"查不到|找不到|能再告诉|请再告诉|请您再提供")

# Unit words and the kind of quantity they make (English words in singular and plural).
_UNIT_KINDS: Mapping[str, str] = {
    **dict.fromkeys(("day", "days", "天", "日"), "day"),
    **dict.fromkeys(("business", "working", "个工作日", "工作日", "个工作"), "workday"),
    **dict.fromkeys(("hour", "hours", "hr", "hrs", "小时", "个小", "钟头"), "hour"),
    **dict.fromkeys(("minute", "minutes", "min", "mins", "分钟"), "minute"),
    **dict.fromkeys(("second", "seconds", "秒", "秒钟"), "second"),
    **dict.fromkeys(("week", "weeks", "周", "个星", "星期", "礼拜"), "week"),
    **dict.fromkeys(("month", "months", "个月"), "month"),
    **dict.fromkeys(("year", "years", "年"), "year"),
    **dict.fromkeys(("night", "nights", "晚", "夜"), "night"),
    **dict.fromkeys(("people", "persons", "person", "guests", "guest", "adults", "adult", "children", "kids",
                     "passengers", "passenger", "人", "位", "名", "个人"), "people"),
    **dict.fromkeys(("times", "time", "次"), "times"),
    **dict.fromkeys(("kg", "kgs", "kilograms", "公斤", "千克"), "kg"),
    **dict.fromkeys(("km", "kilometers", "kilometres", "公里", "千米"), "km"),
    **dict.fromkeys(("gb", "g", "tb", "mb"), "data"),
    **dict.fromkeys(("items", "item", "pieces", "piece", "件", "个", "张", "瓶", "杯", "份", "台", "辆", "箱", "盒"), "count"),
    **dict.fromkeys(("floor", "层", "楼"), "floor"),
    **dict.fromkeys(("points", "point", "分", "积分"), "points"),
    **dict.fromkeys(("kcal", "calories", "千卡", "卡"), "kcal"),
}

# Closed sets whose members a model may swap for one another.
_CATEGORIES: Mapping[str, tuple[str, ...]] = {
    "tier": ("basic", "standard", "plus", "premium", "pro", "enterprise", "gold", "silver", "platinum", "bronze",
             "diamond", "基础版", "标准版", "高级版", "专业版", "旗舰版", "企业版", "金卡", "银卡", "白金卡", "钻石卡",
             "普通会员", "黄金会员", "白银会员", "铂金会员", "钻石会员"),
    "room": ("single room", "double room", "twin room", "suite", "king room", "queen room", "大床房", "双床房",
             "单人间", "双人间", "标准间", "套房", "家庭房"),
    "cabin": ("economy", "business class", "first class", "premium economy", "经济舱", "商务舱", "头等舱",
              "公务舱", "超级经济舱"),
    "size": ("small", "medium", "large", "extra large", "小号", "中号", "大号", "加大号", "特大号"),
    "colour": ("red", "blue", "green", "black", "white", "yellow", "grey", "gray", "pink", "purple", "orange",
               "brown", "红色", "蓝色", "绿色", "黑色", "白色", "黄色", "灰色", "粉色", "紫色", "橙色", "棕色", "银色"),
    "side": ("left", "right", "左边", "右边", "左侧", "右侧", "向左", "向右", "左上角", "右上角", "左下角", "右下角"),
    "day": ("today", "tomorrow", "yesterday", "tonight", "今天", "明天", "后天", "昨天", "前天", "今晚", "明晚"),
    "daypart": ("morning", "afternoon", "evening", "上午", "下午", "晚上", "早上", "中午", "凌晨"),
    "order": ("before", "after", "earlier", "later", "之前", "之后", "以前", "以后", "提前", "推迟", "延后"),
    "trend": ("increase", "increased", "decrease", "decreased", "higher", "lower", "more", "less", "fewer",
              "rise", "rose", "fell", "drop", "dropped", "上涨", "下降", "增长", "减少", "增加", "降低", "提高"),
    "channel": ("email", "e-mail", "phone call", "text message", "sms", "live chat", "in person", "邮件", "邮箱",
                "电话", "短信", "微信", "在线客服", "到店", "上门"),
    "payment": ("credit card", "debit card", "cash", "paypal", "alipay", "wechat pay", "bank transfer", "信用卡",
                "借记卡", "储蓄卡", "现金", "支付宝", "微信支付", "银行转账"),
    "state": ("approved", "rejected", "declined", "pending", "shipped", "delivered", "cancelled", "canceled",
              "refunded", "已批准", "已拒绝", "审核中", "已发货", "已送达", "已签收", "已取消", "已退款", "待审核",
              "未发货", "已通过", "未通过"),
}
_CATEGORY_GROUPS: Mapping[str, tuple[frozenset[str], ...]] = {
    # members that say the same thing within a set
    "colour": (frozenset({"grey", "gray", "灰色"}),),
    "cabin": (frozenset({"business class", "商务舱", "公务舱"}),),
    "state": (frozenset({"cancelled", "canceled", "已取消"}), frozenset({"rejected", "declined", "已拒绝", "未通过"}),
              frozenset({"approved", "已批准", "已通过"}), frozenset({"delivered", "已送达", "已签收"})),
    "channel": (frozenset({"email", "e-mail", "邮件", "邮箱"}), frozenset({"text message", "sms", "短信"}),
                frozenset({"phone call", "电话"})),
    "payment": (frozenset({"debit card", "借记卡", "储蓄卡"}),),
    "order": (frozenset({"before", "earlier", "之前", "以前", "提前"}), frozenset({"after", "later", "之后", "以后", "推迟", "延后"})),
    "trend": (frozenset({"increase", "increased", "higher", "more", "rise", "rose", "上涨", "增长", "增加", "提高"}),
              frozenset({"decrease", "decreased", "lower", "less", "fewer", "fell", "drop", "dropped", "下降", "减少", "降低"})),
    "day": (frozenset({"tonight", "今晚", "today", "今天"}),),
    "daypart": (frozenset({"morning", "上午", "早上"}), frozenset({"evening", "晚上"})),
    "side": (frozenset({"left", "左边", "左侧", "向左"}), frozenset({"right", "右边", "右侧", "向右"})),
    "size": (frozenset({"large", "大号"}), frozenset({"small", "小号"}), frozenset({"medium", "中号"})),
    "room": (frozenset({"double room", "大床房", "king room", "queen room"}), frozenset({"twin room", "双床房"}),
             frozenset({"single room", "单人间"}), frozenset({"suite", "套房"})),
    "tier": (frozenset({"gold", "金卡", "黄金会员"}), frozenset({"silver", "银卡", "白银会员"}),
             frozenset({"platinum", "白金卡", "铂金会员"}), frozenset({"diamond", "钻石卡", "钻石会员"})),
}


def _category_patterns() -> dict[str, re.Pattern[str]]:
    out = {}
    for name, words in _CATEGORIES.items():
        ascii_words = sorted((w for w in words if w.isascii()), key=len, reverse=True)
        cjk_words = sorted((w for w in words if not w.isascii()), key=len, reverse=True)
        parts = []
        if ascii_words:
            parts.append(r"\b(?:" + "|".join(re.escape(w) for w in ascii_words) + r")\b")
        if cjk_words:
            parts.append("(?:" + "|".join(re.escape(w) for w in cjk_words) + ")")
        out[name] = re.compile("|".join(parts))
    return out


_CATEGORY_RE = _category_patterns()
_CANONICAL_MEMBER = {member: min(group) for groups in _CATEGORY_GROUPS.values() for group in groups for member in group}

# Yes / no at the start of an answer (after an opener such as "Great question!").
_OPENER = re.compile(r"^(?:(?:hi|hello|thanks?(?: you)?(?: for [^.!,]*)?|great question|good question|"
                     r"您好|你好|感谢您的耐心|感谢您的提问)[!.,:;\s]*)+")
_YES_EN = re.compile(r"^(?:yes|yeah|yep|yup|correct|that's right|that is right|absolutely|definitely|certainly|"
                     r"indeed|of course(?= it| you| we| they|[,.!]))\b")
_NO_EN = re.compile(r"^(?:no|nope|not really|unfortunately|"
                    r"i'm afraid not|i am afraid not|sorry,? (?:no|not|it (?:is not|isn't|can't|cannot|won't|doesn't)))\b(?! problem| worries)")
_YES_ZH = re.compile(r"^(?:没问题|是的|是|对的|对|没错|正确|可以的|可以|能|会的|会|需要|有的|有|当然可以|当然|当然会|当然能|包含|包括|含|成功了|成功)(?=[,.!;:。!]|$)")
_NOT_A_NO_ZH = re.compile(r"^(?:没问题|没关系|没事|不客气|不好意思|不用担心|不用客气|不过)")
_NO_ZH = re.compile(r"^(?:不是|不对|不可以|不能|不会|不需要|不用|没有|没|无法|不行|不包含|不包括|不含|不支持|抱歉,?不|很抱歉,?不|很遗憾|遗憾的是)")

# Negation words: two answers that read the same but for these say opposite things.
_NEGATIONS_EN = frozenset({"not", "n't", "no", "never", "none", "non", "cannot", "without", "nothing", "neither", "nor"})
_NEGATIONS_ZH = frozenset("不没无未别非否")
_TOKENS = re.compile(r"n't|[a-z0-9]+(?=n't)|[a-z0-9]+(?:'[a-z]+)?|[\u4e00-\u9fff]|[%$¥:]")
_HARMLESS = frozenset({"the", "a", "an", "your", "you", "is", "are", "will", "be", "it", "this", "that", "to", "of", "and",
                       "do", "does", "did", "have", "has", "can", "please", "just", "so", "also", "really", "at", "all",
                       "了", "的", "是", "会", "有", "也", "都", "您", "你", "在", "就", "还", "法", "需", "要", "可", "以", "能"})


@dataclass(frozen=True)
class Claims:
    """The canonical claims of one answer; each field maps a kind to its set of values."""

    numbers: Mapping[str, frozenset[str]]
    dates: frozenset[str]
    times: frozenset[str]
    weekdays: frozenset[int]
    months: frozenset[int]
    idents: frozenset[str]
    categories: Mapping[str, frozenset[str]]
    polarity: str | None  # "yes", "no" or None
    refusal: bool = False  # the answer says it does not have or know the thing asked

    def is_empty(self) -> bool:
        return not (self.numbers or self.dates or self.times or self.weekdays or self.months or self.idents
                    or self.categories or self.polarity)


def _cut(pattern: re.Pattern[str], text: str, found: list[str], group: int | None = None) -> str:
    """Collect matches of `pattern` and blank them out of the text, so a date's day is not
    also read as a bare number."""
    def take(m: re.Match[str]) -> str:
        found.append(m.group(0) if group is None else next(g for g in m.groups() if g is not None))
        return " ¶ "
    return pattern.sub(take, text)


def _unit_kind(word: str | None, after: str = "") -> str:
    if not word:
        return "bare"
    if word.isascii():
        if word in ("business", "working") and not after.lstrip().startswith("day"):
            return "bare"
        return _UNIT_KINDS.get(word, "bare")
    for size in range(len(word), 0, -1):
        if word[:size] in _UNIT_KINDS:
            return _UNIT_KINDS[word[:size]]
    return "bare"


def _number_key(text: str) -> str:
    value = float(text)
    return str(int(value)) if value == int(value) else repr(value)


_FREE = re.compile(r"\b(?:(?:is|are|it's|for|comes?|completely|totally) free\b|free of charge|at no (?:extra )?"
                   r"(?:cost|charge)|no (?:extra |additional )?(?:fee|charge|cost)s?\b|don't charge|doesn't cost anything)"
                   r"|免费|不收费|不收取\w{0,4}费|免\w{0,2}费|无需付费|不要钱")


@lru_cache(maxsize=65536)
def extract(text: str) -> Claims:
    """The claims of a text (normalized here; passing a normalized text is fine too)."""
    text = normalize(text)
    found: list[str] = []
    text = _cut(_DATE, text, found)
    dates = frozenset(f"{m.group(1) or ''}-{int(m.group(2))}-{int(m.group(3))}" for m in map(_DATE.fullmatch, found) if m)
    found = []
    text = _cut(_TIME, text, found)
    times = frozenset(found)
    weekdays = {_WEEKDAYS[m.group(1)] for m in _WEEKDAY.finditer(text)}
    weekdays |= {_ZH_WEEKDAYS[m.group(1)] for m in _ZH_WEEKDAY.finditer(text) if _ZH_WEEKDAYS[m.group(1)]}
    text = _ZH_WEEKDAY.sub(" ¶ ", text)
    months = frozenset(_MONTH_NAMES.get(m.group(1) or "", 0) or int(m.group(2) or 0) for m in _MONTH.finditer(text)) - {0}
    idents = set()
    for m in _IDENT.finditer(text):
        idents.add(m.group(1) + m.group(2))
    text = _IDENT.sub(" ¶ ", text)
    numbers: dict[str, set[str]] = {}
    money: list[str] = []
    text = _cut(_MONEY, text, money, group=0)
    if money:
        numbers["money"] = {_number_key(v) for v in money}
    if _FREE.search(text):  # "free", "at no cost", 免费: a price of zero, against "$15 fee"
        numbers.setdefault("money", set()).add("0")
    percents: list[str] = []
    text = _cut(_PERCENT, text, percents, group=0)
    if percents:
        numbers["percent"] = {_number_key(v) for v in percents}
    text = _RANGE.sub(lambda m: m.group(1) + "⁓", text)  # 3-5 days: both ends take the unit
    pending: list[str] = []
    for m in _NUMBER_UNIT.finditer(text):
        value, unit = m.group(1), m.group(2)
        if text[m.end(1):m.end(1) + 1] == "⁓":
            pending.append(value)
            continue
        kind = _unit_kind(unit, text[m.end():m.end() + 5])
        for v in (*pending, value):
            if len(v.replace(".", "")) >= 7 and kind == "bare":
                idents.add(v)  # a phone, an account: an identifier, not a quantity
            elif kind in _DAYS:  # durations compare across units: 72 hours = 3 days
                numbers.setdefault("duration", set()).add(repr(round(float(v) * _DAYS[kind], 4)))
            else:
                numbers.setdefault(kind, set()).add(_number_key(v))
        pending = []
    categories: dict[str, set[str]] = {}
    for name, pattern in _CATEGORY_RE.items():
        for m in pattern.finditer(text):
            categories.setdefault(name, set()).add(_CANONICAL_MEMBER.get(m.group(0), m.group(0)))
    return Claims(
        numbers={k: frozenset(v) for k, v in numbers.items()}, dates=dates, times=times,
        weekdays=frozenset(weekdays), months=months, idents=frozenset(compact(i) for i in idents),
        categories={k: frozenset(v) for k, v in categories.items()}, polarity=polarity(text),
        refusal=bool(_REFUSAL.search(text)),
    )


def polarity(normalized: str) -> str | None:
    """"yes" or "no" when the answer opens with one, else None."""
    head = _OPENER.sub("", normalized.lstrip("*#-> "))
    if _NO_EN.match(head) or (_NO_ZH.match(head) and not _NOT_A_NO_ZH.match(head)):
        return "no"
    if _YES_EN.match(head) or _YES_ZH.match(head):
        return "yes"
    return None


def _clash(a: frozenset[Any], b: frozenset[Any], same: Callable[[Any, Any], bool] = operator.eq) -> bool:
    """Both state values of one kind and each states one the other does not."""
    if not a or not b:
        return False
    return any(not any(same(x, y) for y in b) for x in a) and any(not any(same(x, y) for x in a) for y in b)


def _same_date(x: str, y: str) -> bool:
    year_x, _, rest_x = x.partition("-")
    year_y, _, rest_y = y.partition("-")
    return rest_x == rest_y and (not year_x or not year_y or year_x == year_y)


def _same_duration(x: str, y: str) -> bool:
    a, b = float(x), float(y)
    return abs(a - b) <= 0.05 * max(a, b)


def _same_ident(x: str, y: str) -> bool:
    return x in y or y in x  # a tracking number read in two pieces, or with its prefix


def _stem(token: str) -> str:
    if token.isascii() and len(token) > 4:
        for suffix in ("ing", "ed", "es", "s"):
            if token.endswith(suffix):
                stem = token[: -len(suffix)]
                return token if stem in _NEGATIONS_EN else stem  # "noted" is not "not"
    return token


def _diff(a: str, b: str) -> tuple[list[str], list[str], difflib.SequenceMatcher[str]]:
    a, b = _NOT_NEGATIONS.sub(" ", a), _NOT_NEGATIONS.sub(" ", b)
    ta, tb = [_stem(t) for t in _TOKENS.findall(a)], [_stem(t) for t in _TOKENS.findall(b)]
    return ta, tb, difflib.SequenceMatcher(None, ta, tb, autojunk=False)


def _negation_only(a: str, b: str) -> bool:
    """The two texts read much the same, one negates and the other does not (refundable /
    not refundable, 会收取 / 不会收取, 正常营业 / 不营业)."""
    ta, tb, matcher = _diff(a, b)
    if not ta or not tb or _negation_count(ta) % 2 == _negation_count(tb) % 2 or matcher.ratio() < 0.6:
        return False
    changed: list[str] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op != "equal":
            changed += ta[i1:i2] + tb[j1:j2]
    negations = [t for t in changed if t in _NEGATIONS_EN or t in _NEGATIONS_ZH]
    other = [t for t in changed if t not in _NEGATIONS_EN and t not in _NEGATIONS_ZH and t not in _HARMLESS]
    return bool(negations) and len(other) <= 3


_FUNCTION_WORDS = frozenset(
    "the a an your you i we it this that is are was were be been being will would can could should may might to of "
    "for in on at by with and or but so as from up into about just also really please now here there then my our "
    "their his her its me us them do does did has have had very quite sure ok okay all any some".split()
) | frozenset("的了是在您你我们为帮已经将把被就都也还再和与及或呢吧啊呀哦嘛给让请这那个")


def _substitution(a: str, b: str) -> str | None:
    """Two answers that read the same but for one short span of content words swapped
    (Denver / Dallas, 成都 / 重庆, call / email, faster / slower): another claim."""
    ta, tb, matcher = _diff(a, b)
    ops = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    if len(ops) != 1 or ops[0][0] != "replace":
        return None
    _, i1, i2, j1, j2 = ops[0]
    if len(ta) - (i2 - i1) < 3 or i2 - i1 > 3 or j2 - j1 > 3 or min(i1, j1) < 2:
        return None  # a swap in the first words is an opener or a lead-in ("Great question!", 关于 / 针对)
    swapped = ta[i1:i2] + tb[j1:j2]
    if "".join(ta[i1:i2]) == "".join(tb[j1:j2]):
        return None  # QX-48213 / QX48213: the same value spaced another way
    if all(t in _FUNCTION_WORDS or _is_claim_token(t) for t in swapped):
        return None  # numbers, dates, weekdays: the claims above compared them already
    if _cjk(ta[i1]) and _cjk(tb[j1]) and i2 - i1 != j2 - j1:
        return None  # a Chinese rewording (一共住 / 这次入住), not a name swapped for a name
    return f"{''.join(ta[i1:i2]) if _cjk(ta[i1]) else ' '.join(ta[i1:i2])} vs " \
           f"{''.join(tb[j1:j2]) if _cjk(tb[j1]) else ' '.join(tb[j1:j2])}"


_CLAIM_CHARS = frozenset("周礼拜星期号日月年元块折成%¥$€£:点时分半")


def _is_claim_token(token: str) -> bool:
    return (any(ch.isdigit() for ch in token) or token in _WEEKDAYS or token in _MONTH_NAMES
            or token[:3] in ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
            or token in _CLAIM_CHARS or token in ("am", "pm", "o'clock"))


def _cjk(token: str) -> bool:
    return "\u4e00" <= token[:1] <= "\u9fff"


_NOT_NEGATIONS = re.compile(r"没问题|没关系|没事|不客气|不好意思|不用担心|不用客气|不过|\bno problem\b|\bno worries\b|"
                            r"\bnot at all\b|\bno matter\b")


def _has_negation(normalized: str) -> bool:
    return any(t in _NEGATIONS_EN or t in _NEGATIONS_ZH for t in _TOKENS.findall(_NOT_NEGATIONS.sub(" ", normalized)))


def _negation_count(tokens: list[str]) -> int:
    return sum(1 for t in tokens if t in _NEGATIONS_EN or t in _NEGATIONS_ZH)


def conflict(a: str, b: str) -> str | None:
    """Why two answers cannot mean the same (one line), or None when their claims agree."""
    na, nb = normalize(a), normalize(b)
    if na == nb:
        return None
    ca, cb = extract(na), extract(nb)
    if ca.polarity and cb.polarity and ca.polarity != cb.polarity:
        return f"polarity: {ca.polarity} vs {cb.polarity}"
    if ca.refusal != cb.refusal and not _has_negation(nb if ca.refusal else na):
        return "one answer says it does not have the information, the other states it"
    for kind in sorted(ca.numbers.keys() & cb.numbers.keys()):
        if _clash(ca.numbers[kind], cb.numbers[kind], _same_duration if kind == "duration" else operator.eq):
            return f"{kind} numbers: {_show(ca.numbers[kind])} vs {_show(cb.numbers[kind])}"
    checks: tuple[tuple[str, frozenset[Any], frozenset[Any], Callable[[Any, Any], bool]], ...] = (
        ("date", ca.dates, cb.dates, _same_date), ("time", ca.times, cb.times, operator.eq),
        ("weekday", ca.weekdays, cb.weekdays, operator.eq), ("month", ca.months, cb.months, operator.eq),
        ("identifier", ca.idents, cb.idents, _same_ident))
    for label, x, y, same in checks:
        if _clash(x, y, same):
            return f"{label}: {_show(x)} vs {_show(y)}"
    for name in sorted(ca.categories.keys() & cb.categories.keys()):
        x, y = ca.categories[name], cb.categories[name]
        if not x & y:
            return f"{name}: {_show(x)} vs {_show(y)}"
    if _negation_only(na, nb):
        return "negation"
    swapped = _substitution(na, nb)
    return f"swapped: {swapped}" if swapped else None


def _show(values: frozenset[Any]) -> str:
    return ",".join(sorted(str(v) for v in values))
