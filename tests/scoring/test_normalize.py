"""Normalization: the same fact written another way compares equal; other facts do not."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from scoring.normalize import contains, normalize, numbers

DIGIT_WORDS = "零一二三四五六七八九"


def chinese_positional(n: int) -> str:
    """An independent writer of Chinese numerals with units, for 1 <= n < 10^8."""
    def below_10000(x: int, leading: bool) -> str:
        out, zero = "", False
        for unit, size in (("千", 1000), ("百", 100), ("十", 10), ("", 1)):
            digit, x = divmod(x, size)
            if digit:
                if zero:
                    out += "零"
                out += ("" if unit == "十" and digit == 1 and not out and leading else DIGIT_WORDS[digit]) + unit
                zero = False
            elif out:
                zero = True
        return out

    high, low = divmod(n, 10_000)
    if not high:
        return below_10000(low, True)
    text = below_10000(high, True) + "万"
    if low:
        text += ("零" if low < 1000 else "") + below_10000(low, False)
    return text


def test_examples_from_the_issue() -> None:
    assert contains(normalize("您的订单四八二一三已发货"), normalize("48213"))
    assert normalize("四万八千二百一十三") == "48213"
    assert normalize("48,213") == "48213"
    assert normalize("ＯＲＤＥＲ　４８２１３") == "order 48213"
    assert normalize("  Alice \n Chen ") == "alice chen"


def test_words_that_contain_numerals_stay_words() -> None:
    assert normalize("我们统一处理，一般三天内到") == "我们统一处理,一般3天内到"
    assert not numbers(normalize("一般来说统一安排"))


def test_weekday_names_stay_weekdays() -> None:
    assert normalize("周四") == normalize("星期四") == normalize("礼拜四") == "周四"
    assert normalize("每周三次") == "每周3次"  # three a week, not Wednesday


def test_digit_groups_keep_their_zeros() -> None:
    # 001 / 0044 inside a grouped number are digits, not a dialling prefix.
    assert contains(normalize("芯片号是 900 164 001 823 456。"), normalize("900164001823456"))
    assert contains(normalize("Card 2 1903 00441 2786."), normalize("21903004412786"))
    assert contains(normalize("手机号：172 9645 1375"), normalize("17296451375"))
    assert normalize("0086 13812345678") == normalize("+86 138 1234 5678") == "13812345678"


def test_spoken_clock_and_date_forms() -> None:
    assert normalize("up at six thirty in the morning") == "up at 6:30"
    assert normalize("seven forty-five pm") == "19:45"
    assert normalize("six people, twenty five seats") == "6 people, 25 seats"
    assert normalize("on the third of September") == "on 9月3日"
    assert normalize("September twenty-first, 2025") == normalize("2025-09-21")
    assert normalize("from noon to 10 pm") == "from 12:00 to 22:00"  # 00 to 10 is not "ten to ten"
    assert normalize("晚上七点三刻") == "19:45"
    assert normalize("原来是下午三点，后来改成了四点半。") == "原来是15:00,后来改成了16:30。"
    assert normalize("下午三点开会。明天八点出发") == "15:00开会。明天8:00出发"  # a new sentence starts over
    assert normalize("三十六块五") == normalize("36.50元")
    assert normalize("Claims line: 1-800-555-0199") == "claims line: 8005550199"


def test_a_date_at_the_end_of_a_sentence() -> None:
    assert normalize("Confirmed: Saturday 16/08/2025.") == "confirmed: saturday " + normalize("2025-08-16") + "."


def test_whole_tokens_only() -> None:
    assert not contains(normalize("order 148213"), "48213")
    assert not contains(normalize("order 482130"), "48213")
    assert contains(normalize("order:48213."), "48213")
    assert not contains("joanna", "anna")
    assert contains("李雷你好", "李雷")


@given(st.integers(0, 10**12))
def test_digit_by_digit_numerals_read_as_the_number(n: int) -> None:
    spoken = "".join(DIGIT_WORDS[int(d)] for d in str(n))
    if len(spoken) > 1:
        assert normalize(f"号码{spoken}。") == f"号码{n}。"


@given(st.integers(1, 99_999_999))
def test_positional_numerals_read_as_the_number(n: int) -> None:
    assert normalize(f"共{chinese_positional(n)}元") == f"共{n}元"


@given(st.text(max_size=60))
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once
