"""The claims layer: one canonical value for many surface forms, different values never
share one, and answers that differ in one claim conflict."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from scoring import conflict
from scoring.claims import extract
from tests.scoring.test_normalize import chinese_positional as chinese

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


def money_forms(n: int) -> list[str]:
    return [f"${n:,}", f"${n}.00", f"{n} dollars", f"USD {n:,}", f"{chinese(n)}元", f"{n}元", f"¥{n:,}"]


def date_forms(d: dt.date) -> list[str]:
    return [d.isoformat(), f"{MONTHS[d.month - 1]} {d.day}, {d.year}", f"{d.day} {MONTHS[d.month - 1]} {d.year}",
            f"{d.year}年{d.month}月{d.day}日", f"{d.year}年{d.month:02d}月{d.day:02d}号", f"{d.day}.{d.month}.{d.year}"]


def time_forms(hour: int, minute: int) -> list[str]:
    twelve = hour % 12 or 12
    half = "am" if hour < 12 else "pm"
    zh_part, zh_hour = (("凌晨", hour) if hour < 6 else ("上午", hour) if hour < 12 else ("中午", 12) if hour == 12
                        else ("下午", hour - 12) if hour < 18 else ("晚上", hour - 12))
    return [f"{hour}:{minute:02d}", f"{hour:02d}:{minute:02d}", f"{twelve}:{minute:02d} {half}",
            f"{twelve}:{minute:02d}{half.upper()}", f"{zh_part}{zh_hour}点{minute}分" if minute else f"{zh_part}{zh_hour}点"]


@given(st.integers(1, 99_999))
def test_an_amount_in_any_form_is_one_value(n: int) -> None:
    values = {extract(f"The fee is {form}.").numbers.get("money") for form in money_forms(n)}
    assert values == {frozenset({str(n)})}, values


@given(st.integers(1, 99_999), st.integers(1, 99_999))
def test_different_amounts_conflict(a: int, b: int) -> None:
    same = conflict(f"The fee is {money_forms(a)[0]}.", f"It costs {money_forms(b)[4]}.")
    assert (same is None) == (a == b)


@given(st.dates(dt.date(2000, 1, 1), dt.date(2040, 12, 31)))
def test_a_date_in_any_form_is_one_value(d: dt.date) -> None:
    values = {extract(f"It is on {form}.").dates for form in date_forms(d)}
    assert len(values) == 1 and len(next(iter(values))) == 1, values


@given(st.dates(dt.date(2020, 1, 1), dt.date(2030, 12, 31)), st.dates(dt.date(2020, 1, 1), dt.date(2030, 12, 31)))
def test_different_dates_conflict(a: dt.date, b: dt.date) -> None:
    assert (conflict(f"Due {date_forms(a)[0]}.", f"Due {date_forms(b)[1]}.") is None) == (a == b)


@given(st.integers(0, 23), st.sampled_from([0, 5, 15, 30, 45]))
def test_a_time_in_any_form_is_one_value(hour: int, minute: int) -> None:
    values = {extract(f"See you at {form}.").times for form in time_forms(hour, minute)}
    assert values == {frozenset({f"{hour}:{minute:02d}"})}, values


@given(st.integers(10_000, 99_999), st.sampled_from(["QX-", "QX ", "QX", "QX\u2011", "QX\u2013"]))
def test_an_identifier_with_any_separator_is_one_value(n: int, sep: str) -> None:
    assert conflict(f"Your code is QX-{n}.", f"The code: **{sep}{n}**") is None
    assert conflict(f"Your code is QX-{n}.", f"The code: QX-{n + 1}") is not None


def test_one_claim_apart() -> None:
    differ = [
        ("Yes, it's fine.", "No, that is not allowed."),
        ("The meeting is on Friday.", "The meeting is on Monday."),
        ("Delivery takes five days.", "Delivery takes 10 days."),
        ("No, voter registration is free.", "There's a $10 processing fee to register."),
        ("通过手机银行跨行转账免手续费。", "每笔收取2元手续费。"),
        ("会议在周五。", "会议在星期一。"),
    ]
    same = [
        ("The total is $1,200.", "Your total comes to 1200.00 dollars."),
        ("It opens at 9 am.", "Opening time: 09:00."),
        ("余额36.50元。", "还有三十六块五。"),
        ("会议在周五。", "会议安排在星期五。"),
        ("Open Sundays from noon to 10 pm.", "On Sundays it opens at 12:00 and closes at 22:00."),
        ("1. Bring your ID\n2. Bring a photo", "- Bring your ID\n- Bring a photo"),
        ("Your order number is 30310.", "Your order number is **30310**. I've noted it in your booking."),
    ]
    assert all(conflict(a, b) for a, b in differ), [(a, b) for a, b in differ if not conflict(a, b)]
    assert not [(a, b, conflict(a, b)) for a, b in same if conflict(a, b)]
