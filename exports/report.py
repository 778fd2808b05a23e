"""report.html: one self-contained page per institution, in Dutch, for its marketing staff.

The page needs nothing from the network: the style is inline and the charts are static SVG
(exports/charts.py). It shows only what the institution's package holds: its own rows and the
peer and sector aggregates. A section whose table or column is missing from the release is
left out with a note, so the report keeps working while marts are added or renamed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

from exports import charts
from exports.charts import OWN, PEER, POPULATION, Series


@dataclass
class Table:
    columns: list[str]
    rows: list[dict]

    def has(self, *columns: str) -> bool:
        return all(c in self.columns for c in columns)


@dataclass
class Institution:
    code: str
    name: str
    discipline: str = ""
    pc4: str = ""


@dataclass
class ReleaseInfo:
    release_id: str
    created_at: str
    k: int
    open_years_perturbed: bool = False
    code_version: str = ""
    today: dt.date = field(default_factory=dt.date.today)


# ---------------------------------------------------------------- number formats (Dutch)


def _group(text: str) -> str:
    """1,234.5 -> 1.234,5"""
    return text.replace(",", "_").replace(".", ",").replace("_", ".")


def fmt_int(v: float) -> str:
    return _group(f"{round(v):,}")


def fmt_num(v: float, digits: int = 1) -> str:
    return _group(f"{v:,.{digits}f}")


def fmt_pct(v: float) -> str:
    return _group(f"{100 * v:.1f}") + "%"


def fmt_pct0(v: float) -> str:
    return _group(f"{100 * v:.0f}") + "%"


def fmt_eur(v: float) -> str:
    return "€ " + _group(f"{v:,.2f}")


def fmt_eur0(v: float) -> str:
    return "€ " + _group(f"{v:,.0f}")


def fmt_days(v: float) -> str:
    return fmt_num(v, 0 if v >= 10 else 1) + " dagen"


def fmt_pen(v: float) -> str:
    """Penetration: persons per 1,000 inhabitants."""
    return fmt_num(v, 2 if v < 10 else 1)


DISCIPLINES_NL = {"beeldende_kunst": "beeldende kunst", "jeugd": "jeugdtheater"}
PEER_LEVEL_NL = {
    "discipline_size": "instellingen in uw discipline én uw grootteklasse",
    "discipline": "alle instellingen in uw discipline (uw grootteklasse had te weinig "
    "instellingen voor een eerlijke vergelijking)",
    "sector": "alle instellingen in de sector (uw discipline had te weinig instellingen voor "
    "een eerlijke vergelijking)",
}
SIZE_NL = {
    "S": "klein (minder dan 10.000 kaarten per jaar)",
    "M": "middelgroot (10.000 tot 100.000 kaarten)",
    "L": "groot (meer dan 100.000 kaarten)",
}


def discipline_nl(d: str | None) -> str:
    return DISCIPLINES_NL.get(d or "", (d or "onbekend").replace("_", " "))


@dataclass(frozen=True)
class Metric:
    column: str
    label: str
    explanation: str
    fmt: Callable[[float], str]
    person_based: bool


BENCHMARK_METRICS = (
    Metric("tickets", "Verkochte kaarten", "na correcties en annuleringen", fmt_int, False),
    Metric("revenue", "Recette", "totale kaartopbrengst", fmt_eur0, False),
    Metric("avg_price", "Gemiddelde prijs", "per betaald kaartje", fmt_eur, False),
    Metric("occupancy", "Bezettingsgraad", "verkochte kaarten / capaciteit", fmt_pct, False),
    Metric("share_online", "Online verkocht", "aandeel van de kaarten", fmt_pct, False),
    Metric(
        "share_discounted",
        "Korting of gratis",
        "korting, CJP, Museumkaart, vrijkaart",
        fmt_pct,
        False,
    ),
    Metric(
        "lead_time_days_median",
        "Voorverkoop",
        "mediaan aantal dagen vóór het bezoek",
        fmt_days,
        False,
    ),
    Metric(
        "share_identified",
        "Herleidbare kaarten",
        "kaarten gekoppeld aan een bezoeker",
        fmt_pct,
        False,
    ),
    Metric("n_persons", "Unieke bezoekers", "verschillende personen", fmt_int, True),
    Metric("tickets_per_person", "Kaarten per bezoeker", "", lambda v: fmt_num(v, 2), True),
    Metric("share_new", "Nieuwe bezoekers", "voor het eerst bij u dit jaar", fmt_pct, True),
    Metric("retention", "Retentie", "bezoekers van vorig jaar die terugkwamen", fmt_pct, True),
    Metric("share_young", "Jongeren (12-29 jaar)", "aandeel van de bezoekers", fmt_pct, True),
    Metric("share_local", "Uit eigen gemeente", "aandeel van de bezoekers", fmt_pct, True),
)

CSS = """
:root { --own: #0f6e8c; --peer: #e8913a; --muted: #616e7c; --line: #e3e7eb; }
* { box-sizing: border-box; }
body { font-family: 'Segoe UI', Helvetica, Arial, sans-serif; color: #1f2933; margin: 0;
       background: #f5f7f9; line-height: 1.45; font-size: 15px; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
header { border-bottom: 4px solid var(--own); padding-bottom: 12px; margin-bottom: 18px; }
h1 { font-size: 28px; margin: 0 0 4px; }
h2 { font-size: 21px; margin: 34px 0 6px; padding-top: 12px; border-top: 1px solid var(--line); }
h3 { font-size: 16px; margin: 22px 0 4px; }
.sub, .muted { color: var(--muted); }
.lead { font-size: 15px; margin: 4px 0 12px; max-width: 820px; }
.howto { background: #eef6f8; border-left: 4px solid var(--own); padding: 10px 16px; margin: 12px 0; }
.howto ul { margin: 6px 0; padding-left: 20px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 14px 0; }
.card { flex: 1 1 150px; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
.card .v { font-size: 22px; font-weight: 600; color: var(--own); }
.card .l { font-size: 13px; color: var(--muted); }
.card .d { font-size: 12px; color: var(--muted); }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 14px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: middle; }
th { font-size: 13px; color: var(--muted); font-weight: 600; }
td.n, th.n { text-align: right; white-space: nowrap; }
td .x { display: block; font-size: 12px; color: var(--muted); }
.supp { color: var(--muted); font-style: italic; border: 1px dashed #9aa5b1; padding: 0 4px;
        border-radius: 3px; font-size: 13px; }
.note { color: var(--muted); font-size: 13px; margin: 4px 0; }
.missing { background: #fff8e6; border-left: 4px solid #e8913a; padding: 8px 12px; font-size: 14px; }
.legend span { display: inline-block; margin-right: 16px; font-size: 13px; }
.sw { display: inline-block; width: 12px; height: 12px; vertical-align: -1px; margin-right: 5px; }
.up { color: #1e7b4f; } .down { color: #b3412f; } .same { color: var(--muted); }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 8px 28px; }
.heat { width: auto; } .heat td.n { font-weight: 600; min-width: 90px; }
footer { margin-top: 36px; font-size: 12px; color: var(--muted); border-top: 1px solid var(--line);
         padding-top: 10px; }
svg { display: block; max-width: 100%; height: auto; }
"""


def _supp(k: int) -> str:
    return f'<span class="supp" title="minder dan {k} personen">onderdrukt</span>'


def _supp_note(k: int) -> str:
    return (
        f'<p class="note"><span class="supp">onderdrukt</span> = minder dan {k} personen: het '
        "cijfer wordt niet getoond, zodat niemand herkenbaar is.</p>"
    )


def _missing(what: str, table: str) -> str:
    return (
        f'<p class="missing">{escape(what)} ontbreekt in deze release (de tabel of kolom '
        f"<code>{escape(table)}</code> is niet beschikbaar).</p>"
    )


def _value(v, fmt: Callable[[float], str], suppressed: bool, k: int) -> str:
    if v is None:
        return _supp(k) if suppressed else '<span class="muted">–</span>'
    return escape(fmt(v))


def _num(v) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if f != f else f


def _own_series(label: str, rows: Sequence[dict], column: str = "share") -> Series:
    """The member's own values of ``column`` per row, with each row's suppression flag."""
    return Series(
        label,
        OWN,
        [_num(r.get(column)) for r in rows],
        [bool(r.get("suppressed")) for r in rows],
    )


def _rows_for_year(table: Table | None, year: int) -> list[dict]:
    return [r for r in (table.rows if table else []) if r.get("year") == year]


def _year_is_open(year: int, today: dt.date) -> bool:
    """A year is open (late deliveries, provisional figures) until 1 February of the next."""
    return today < dt.date(year + 1, 2, 1)


# ---------------------------------------------------------------- sections


def _key_figures(tables: dict[str, Table], year: int) -> str:
    bench = tables.get("benchmark")
    summary = tables.get("loyalty_summary")
    now = (_rows_for_year(bench, year) or [{}])[0]
    before = (_rows_for_year(bench, year - 1) or [{}])[0]
    loyal = (_rows_for_year(summary, year) or [{}])[0]
    cards = []

    def card(label: str, value, fmt, previous=None, change: bool = True) -> None:
        v = _num(value)
        if v is None:
            shown = "onderdrukt" if (now.get("suppressed") or loyal.get("suppressed")) else "–"
            cards.append(
                f'<div class="card"><div class="v muted">{shown}</div>'
                f'<div class="l">{escape(label)}</div></div>'
            )
            return
        delta = ""
        p = _num(previous)
        if change and p:
            rel = round((v - p) / p, 3)
            cls = "up" if rel > 0.005 else "down" if rel < -0.005 else "same"
            sign = "+" if rel > 0 else "−" if rel < 0 else "±"
            delta = (
                f'<div class="d"><span class="{cls}">{sign}{fmt_pct(abs(rel))}</span> '
                f"t.o.v. {year - 1}</div>"
            )
        cards.append(
            f'<div class="card"><div class="v">{escape(fmt(v))}</div>'
            f'<div class="l">{escape(label)}</div>{delta}</div>'
        )

    card("unieke bezoekers", now.get("n_persons"), fmt_int, before.get("n_persons"))
    card("verkochte kaarten", now.get("tickets"), fmt_int, before.get("tickets"))
    card("recette", now.get("revenue"), fmt_eur0, before.get("revenue"))
    card("retentie (kwam terug)", now.get("retention"), fmt_pct, change=False)
    if loyal:
        card("nieuwe bezoekers", loyal.get("n_new"), fmt_int, change=False)
    return '<div class="cards">' + "".join(cards) + "</div>"


@dataclass
class Comparison:
    metric: Metric
    own: float
    mean: float
    difference: float  # relative for amounts, percentage points for shares
    same: bool

    @property
    def text(self) -> str:
        if self.same:
            return "≈ gelijk aan het gemiddelde"
        word = "hoger" if self.difference > 0 else "lager"
        if self.metric.fmt is fmt_pct:
            return f"{fmt_num(abs(self.difference) * 100, 1)} procentpunt {word}"
        if self.difference >= 1:
            return f"{fmt_num(self.own / self.mean, 1)} keer zo hoog"
        return f"{fmt_pct0(abs(self.difference))} {word}"


def compare(metric: Metric, own: float | None, mean: float | None) -> Comparison | None:
    """Own value against the peer mean: percentage points for shares, else a relative change."""
    if own is None or not mean:
        return None
    if metric.fmt is fmt_pct:
        diff = own - mean
        return Comparison(metric, own, mean, diff, abs(diff) < 0.01)
    rel = (own - mean) / abs(mean)
    return Comparison(metric, own, mean, rel, abs(rel) < 0.05)


def _benchmark(tables: dict[str, Table], year: int, k: int) -> str:
    bench = tables.get("benchmark")
    title = "<h2>1. Hoe doet u het ten opzichte van vergelijkbare instellingen?</h2>"
    if bench is None or not bench.has("institution_code", "year"):
        return title + _missing("De benchmark", "benchmark")
    rows = _rows_for_year(bench, year)
    if not rows:
        return title + '<p class="note">Geen benchmark voor dit jaar.</p>'
    row = rows[0]
    level = row.get("peer_level")
    n_inst = row.get("peer_n_institutions")
    group = PEER_LEVEL_NL.get(level or "", "vergelijkbare instellingen")
    size = SIZE_NL.get(row.get("size_class") or "", "")
    intro = (
        f'<p class="lead">Uw <b>vergelijkingsgroep</b> in {year}: {escape(group)}'
        + (f", {n_inst} instellingen (u meegeteld)" if n_inst else "")
        + (f". Uw grootteklasse: {escape(size)}" if size else "")
        + ". U ziet alleen het gemiddelde en de spreiding van de groep, nooit de cijfers van "
        "een andere instelling.</p>"
    )
    legend = (
        '<p class="legend"><span><i class="sw" style="background:#0f6e8c"></i>uw waarde</span>'
        '<span><i class="sw" style="background:#e8913a;width:4px"></i>gemiddelde van de '
        'groep</span><span><i class="sw" style="background:#d5dbe1"></i>middelste helft van de '
        "groep (25%–75%)</span></p>"
    )
    head = (
        "<table><tr><th>Kengetal</th><th class='n'>Uw waarde</th><th class='n'>Gemiddelde "
        "groep</th><th class='n'>Middelste helft</th><th></th><th>Vergelijking</th></tr>"
    )
    body = []
    suppressed_any = False
    for m in BENCHMARK_METRICS:
        if m.column not in bench.columns:
            continue
        own = _num(row.get(m.column))
        mean = _num(row.get(f"{m.column}_peer_mean"))
        p25 = _num(row.get(f"{m.column}_peer_p25"))
        p75 = _num(row.get(f"{m.column}_peer_p75"))
        rank = _num(row.get(f"{m.column}_peer_rank"))
        own_suppressed = own is None and bool(row.get("suppressed")) and m.person_based
        if m.column == "retention" and own is None and not _rows_for_year(bench, year - 1):
            own_suppressed = False  # no previous year: nothing to retain
        suppressed_any |= own_suppressed
        spread = (
            f"{escape(m.fmt(p25))} – {escape(m.fmt(p75))}"
            if p25 is not None and p75 is not None
            else '<span class="muted">–</span>'
        )
        comparison = compare(m, own, mean)
        if comparison is not None:
            if comparison.same:
                verdict = f'<span class="same">{comparison.text}</span>'
            elif comparison.difference > 0:
                verdict = f'<span class="up">▲ {comparison.text}</span>'
            else:
                verdict = f'<span class="down">▼ {comparison.text}</span>'
            if rank is not None:
                verdict += f'<span class="x">hoger dan {fmt_pct0(rank / 100)} van de groep</span>'
        else:
            verdict = '<span class="muted">–</span>'
        chart = charts.bullet(own, mean, p25, p75, title=f"{m.label}: u tegenover de groep")
        body.append(
            f"<tr><td><b>{escape(m.label)}</b><span class='x'>{escape(m.explanation)}</span></td>"
            f"<td class='n'>{_value(own, m.fmt, own_suppressed, k)}</td>"
            f"<td class='n'>{_value(mean, m.fmt, False, k)}</td><td class='n'>{spread}</td>"
            f"<td>{chart}</td><td>{verdict}</td></tr>"
        )
    notes = [
        '<p class="note">– = niet beschikbaar: de groep is te klein voor dit cijfer (een '
        "gemiddelde vanaf 5 instellingen, de spreiding vanaf 10), één of twee grote instellingen "
        "zouden het bepalen, of er is geen vorig jaar om mee te vergelijken.</p>"
    ]
    if suppressed_any:
        notes.insert(0, _supp_note(k))
    return (
        title
        + intro
        + legend
        + head
        + "".join(body)
        + "</table>"
        + "".join(notes)
        + _trend(bench, k)
    )


def _trend(bench: Table, k: int) -> str:
    wanted = [
        m
        for m in BENCHMARK_METRICS
        if m.column in ("tickets", "n_persons", "revenue", "retention", "share_new", "share_young")
        and m.column in bench.columns
    ]
    years = sorted({r["year"] for r in bench.rows if r.get("year") is not None})
    if len(years) < 2 or not wanted:
        return ""
    by_year = {r["year"]: r for r in bench.rows}
    head = "<tr><th>Jaar</th>" + "".join(f"<th class='n'>{escape(m.label)}</th>" for m in wanted)
    cells = []
    for y in years:
        r = by_year[y]
        cells.append(
            f"<tr><td>{y}</td>"
            + "".join(
                f"<td class='n'>{_value(_num(r.get(m.column)), m.fmt, bool(r.get('suppressed')) and m.person_based and not (m.column == 'retention' and y == years[0]), k)}</td>"
                for m in wanted
            )
            + "</tr>"
        )
    return (
        "<h3>Ontwikkeling over de jaren</h3><table>" + head + "</tr>" + "".join(cells) + "</table>"
    )


def _age_index_column(age: Table | None) -> str | None:
    """market_age's index column (``share_index``; ``index`` in the first version)."""
    return next((c for c in ("share_index", "index") if age is not None and c in age.columns), None)


def _highlights(tables: dict[str, Table], year: int) -> str:
    """Three to five plain sentences: where the member stands out, and where to grow."""
    items = []
    bench = tables.get("benchmark")
    row = (_rows_for_year(bench, year) or [{}])[0] if bench else {}
    comparisons = [
        c
        for m in BENCHMARK_METRICS
        if m.column in row
        and (c := compare(m, _num(row.get(m.column)), _num(row.get(f"{m.column}_peer_mean"))))
        and not c.same
    ]
    ups = sorted((c for c in comparisons if c.difference > 0), key=lambda c: -c.difference)[:2]
    downs = sorted((c for c in comparisons if c.difference < 0), key=lambda c: c.difference)[:2]
    for c in ups + downs:
        if c.metric.fmt is not fmt_pct and c.difference >= 1:
            where = f"is {fmt_num(c.own / c.mean, 1)} keer zo hoog als"
        else:
            side = "boven" if c.difference > 0 else "onder"
            where = f"ligt {c.text.rsplit(' ', 1)[0]} {side}"
        items.append(
            f"<b>{escape(c.metric.label)}</b> ({escape(c.metric.fmt(c.own))}) {escape(where)} "
            f"het gemiddelde van uw vergelijkingsgroep ({escape(c.metric.fmt(c.mean))})."
        )
    area = tables.get("market_area")
    if area is not None and area.has("area_level", "potential", "area_name"):
        gem = [
            r
            for r in _rows_for_year(area, year)
            if r.get("area_level") == "gemeente" and (_num(r.get("potential")) or 0) >= 1
        ]
        if gem:
            best = max(gem, key=lambda r: r["potential"])
            items.append(
                f"De meeste <b>groeiruimte</b> zit in {escape(str(best['area_name']))}: met de "
                "penetratie van uw vergelijkingsgroep zou u daar ongeveer "
                f"{fmt_int(best['potential'])} bezoekers meer hebben."
            )
    age = tables.get("market_age")
    index = _age_index_column(age)
    if age is not None and index and age.has("age_band"):
        rows = [r for r in _rows_for_year(age, year) if _num(r.get(index)) is not None]
        if rows:
            low = min(rows, key=lambda r: r[index])
            if low[index] <= 80:
                items.append(
                    f"Bezoekers van <b>{escape(low['age_band'])} jaar</b> zijn bij u "
                    "ondervertegenwoordigd ten opzichte van de bevolking om u heen (index "
                    f"{fmt_int(low[index])}; 100 = evenredig)."
                )
    if not items:
        return ""
    return "<h2>Wat valt op</h2><ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _loyalty(tables: dict[str, Table], year: int, k: int) -> str:
    out = [
        "<h2>2. Hoe trouw is uw publiek?</h2>",
        '<p class="lead">Hoe vaak komen uw bezoekers, komen ze terug, en wat bezoeken ze nog meer '
        "in de sector? Een bezoek is één voorstelling, tentoonstellingsdag of film.</p>",
    ]
    suppressed_any = False
    summary = tables.get("loyalty_summary")
    if summary is None or not summary.has("year", "n_persons"):
        out.append(_missing("Het loyaliteitsoverzicht", "loyalty_summary"))
    else:
        rows = _rows_for_year(summary, year)
        if rows:
            r = rows[0]
            supp = bool(r.get("suppressed"))
            items = [
                ("n_persons", "bezoekers", fmt_int),
                ("n_new", "nieuw", fmt_int),
                ("n_returning", "terugkerend", fmt_int),
                ("retention", "retentie: kwam terug uit " + str(year - 1), fmt_pct),
                (
                    "new_retention",
                    "nieuwe bezoekers van " + str(year - 1) + " die terugkwamen",
                    fmt_pct,
                ),
                ("avg_visits", "bezoeken per bezoeker", lambda v: fmt_num(v, 2)),
                ("avg_spend", "besteding per bezoeker", fmt_eur),
                ("n_lapsed", "afgehaakt: laatste bezoek 18-36 maanden geleden", fmt_int),
            ]
            cards = []
            no_history = not _rows_for_year(summary, year - 1)
            dashes = False
            for col, label, fmt in items:
                if col not in summary.columns:
                    continue
                v = _num(r.get(col))
                needs_history = col in ("retention", "new_retention", "n_lapsed")
                if v is None and needs_history and (no_history or not supp):
                    shown = '<span class="muted">–</span>'
                    dashes = True
                else:
                    shown = _value(v, fmt, supp, k)
                    suppressed_any |= v is None and supp
                cards.append(
                    f'<div class="card"><div class="v">{shown}</div><div class="l">'
                    f"{escape(label)}</div></div>"
                )
            out.append('<div class="cards">' + "".join(cards) + "</div>")
            if dashes:
                out.append(
                    '<p class="note">– = niet te berekenen: er zijn nog geen gegevens over de '
                    "jaren ervoor.</p>"
                )

    freq = tables.get("loyalty_frequency")
    out.append("<h3>Hoe vaak kwamen uw bezoekers in " + str(year) + "?</h3>")
    if freq is None or not freq.has("year", "frequency_band", "share"):
        out.append(_missing("De bezoekfrequentie", "loyalty_frequency"))
    else:
        rows = sorted(_rows_for_year(freq, year), key=lambda r: r.get("band_order") or 0)
        if rows:
            labels = [
                ("1 keer" if r["frequency_band"] == "1" else f"{r['frequency_band']} keer")
                for r in rows
            ]
            s = _own_series("aandeel van uw bezoekers", rows)
            suppressed_any |= any(s.suppressed)
            out.append(
                charts.bar_chart(
                    labels, [s], fmt_pct0, title="Bezoekfrequentie", width=520, height=240
                )
            )
        else:
            out.append('<p class="note">Geen gegevens voor dit jaar.</p>')

    cohorts = tables.get("loyalty_cohorts")
    out.append("<h3>Blijven nieuwe bezoekers terugkomen?</h3>")
    if cohorts is None or not cohorts.has("cohort_year", "years_since", "share_active"):
        out.append(_missing("De cohortcurves", "loyalty_cohorts"))
    else:
        spans = sorted({r["years_since"] for r in cohorts.rows if r.get("years_since") is not None})
        series = []
        for i, cy in enumerate(sorted({r["cohort_year"] for r in cohorts.rows})):
            rows = {r["years_since"]: r for r in cohorts.rows if r["cohort_year"] == cy}
            if max(rows) < 1:
                continue  # a cohort with only its first year has no curve yet
            values = [_num(rows[y].get("share_active")) if y in rows else None for y in spans]
            supp = [bool(rows[y].get("suppressed")) if y in rows else False for y in spans]
            n = _num(next(iter(rows.values())).get("n_cohort"))
            name = f"instroom {cy}" + (f" ({fmt_int(n)} pers.)" if n else "")
            series.append(Series(name, charts.SERIES_COLOURS[i % 7], values, supp))
            suppressed_any |= any(supp)
        if series:
            drawable = any(sum(v is not None for v in s.values) >= 2 for s in series)
            out.append(
                '<p class="note">Per instroomjaar: welk deel van de bezoekers die in dat jaar voor '
                "het eerst kwamen, in de jaren daarna nog een bezoek bracht. Het eerste jaar van "
                "de gegevens telt iedereen als nieuw.</p>"
            )
            out.append(
                ""
                if not drawable
                else charts.line_chart(
                    spans,
                    series,
                    fmt_pct0,
                    title="Cohortcurves",
                    x_label=lambda y: "instroomjaar" if y == 0 else f"+{y} jaar",
                    width=640,
                    height=260,
                )
            )
            table = [
                "<table style='width:auto'><tr><th>Instroom</th>"
                + "".join(
                    f"<th class='n'>{'instroomjaar' if y == 0 else f'+{y} jaar'}</th>"
                    for y in spans
                )
                + "</tr>"
            ]
            for s in series:
                table.append(
                    f"<tr><td>{escape(s.name)}</td>"
                    + "".join(
                        f"<td class='n'>{_value(v, fmt_pct0, s.is_suppressed(i), k)}</td>"
                        if v is not None or s.is_suppressed(i)
                        else "<td></td>"
                        for i, v in enumerate(s.values)
                    )
                    + "</tr>"
                )
            out.append("".join(table) + "</table>")
        else:
            out.append('<p class="note">Nog geen instroomjaar met een vervolgjaar.</p>')

    cross = tables.get("loyalty_crossover")
    out.append("<h3>Wat bezoeken uw bezoekers nog meer?</h3>")
    if cross is None or not cross.has("year", "discipline", "share"):
        out.append(_missing("De cross-over", "loyalty_crossover"))
    else:
        rows = sorted(
            _rows_for_year(cross, year),
            key=lambda r: (-(_num(r.get("share")) or -1), r["discipline"]),
        )
        if rows:
            labels = [
                discipline_nl(r["discipline"])
                + (" (andere instellingen)" if r.get("is_own_discipline") else "")
                for r in rows
            ]
            s = _own_series("deel van uw bezoekers dat ook hier kwam", rows)
            suppressed_any |= any(s.suppressed)
            base = _num(rows[0].get("n_base_persons"))
            out.append(
                '<p class="note">Van uw bezoekers die in de hele sector herkenbaar zijn'
                + (f" ({fmt_int(base)} personen)" if base else "")
                + f": welk deel in {year} óók een andere instelling van deze discipline bezocht. "
                "Welke instelling dat was, blijft geheim.</p>"
            )
            out.append(
                charts.hbar_chart(labels, [s], fmt_pct0, title="Cross-over bezoek", label_width=230)
            )
        else:
            out.append('<p class="note">Geen gegevens voor dit jaar.</p>')

    seg = tables.get("loyalty_segments")
    out.append("<h3>Cultuurliefhebbers: hoe vaak en hoe breed</h3>")
    if seg is None or not seg.has("year", "intensity", "breadth", "share"):
        out.append(_missing("De publiekssegmenten", "loyalty_segments"))
    else:
        rows = _rows_for_year(seg, year)
        if rows:
            cell = {(r["intensity"], r["breadth"]): r for r in rows}
            intens = [
                ("light", "licht (1 bezoek)"),
                ("medium", "gemiddeld (2-4)"),
                ("intensive", "intensief (5+)"),
            ]
            breadths = sorted({r["breadth"] for r in rows})
            html = [
                "<table class='heat'><tr><th>Bezoeken in de hele sector ↓ / aantal disciplines "
                "→</th>" + "".join(f"<th class='n'>{escape(b)}</th>" for b in breadths) + "</tr>"
            ]
            for key, label in intens:
                html.append(f"<tr><td>{escape(label)}</td>")
                for b in breadths:
                    r = cell.get((key, b), {})
                    v = _num(r.get("share"))
                    supp = bool(r.get("suppressed"))
                    suppressed_any |= v is None and supp
                    alpha = 0.08 + 0.8 * min((v or 0) / 0.4, 1)
                    style = f" style='background: rgba(15,110,140,{alpha:.2f})'" if v else ""
                    html.append(f"<td class='n'{style}>{_value(v, fmt_pct0, supp, k)}</td>")
                html.append("</tr>")
            out.append(
                '<p class="note">Uw bezoekers (herkenbaar in de hele sector) naar hoe vaak zij in '
                f"{year} iets in de sector bezochten en in hoeveel disciplines. Samen 100%.</p>"
                + "".join(html)
                + "</table>"
            )
        else:
            out.append('<p class="note">Geen gegevens voor dit jaar.</p>')
    if suppressed_any:
        out.append(_supp_note(k))
    return "".join(out)


BANDS = ("0-10", "10-25", "25-50", "50+")


def _market(tables: dict[str, Table], year: int, k: int, inst: Institution) -> str:
    out = [
        "<h2>3. Waar zit groeiruimte?</h2>",
        '<p class="lead"><b>Penetratie</b> = hoeveel inwoners van een gebied uw bezoeker waren, '
        "per 1.000 inwoners. Is die bij vergelijkbare instellingen hoger, dan is daar ruimte om "
        "te groeien.</p>",
    ]
    suppressed_any = False
    area = tables.get("market_area")
    catch = tables.get("market_catchment")
    catch_row = (_rows_for_year(catch, year) or [{}])[0] if catch else {}

    out.append("<h3>Waar wonen uw bezoekers?</h3>")
    if catch is None or not catch.has("year", "n_persons"):
        out.append(_missing("Het verzorgingsgebied", "market_catchment"))
    elif catch_row:
        radii = [(p, _num(catch_row.get(f"radius_{p}_km"))) for p in (60, 80, 90)]
        sentences = [f"{p}% woont binnen {fmt_int(r)} km" for p, r in radii if r is not None]
        if sentences:
            out.append(f'<p class="lead">Van uw bezoekers {escape(", ".join(sentences))}.</p>')
        within = [
            (f"binnen {d} km", _num(catch_row.get(f"share_within_{d}km")))
            for d in (10, 25, 50)
            if f"share_within_{d}km" in catch.columns
        ]
        if within:
            supp = bool(catch_row.get("suppressed"))
            s = Series(
                "aandeel van uw bezoekers",
                OWN,
                [v for _, v in within],
                [v is None and supp for _, v in within],
            )
            suppressed_any |= any(s.suppressed)
            out.append(
                charts.hbar_chart(
                    [w for w, _ in within],
                    [s],
                    fmt_pct0,
                    title="Verzorgingsgebied",
                    x_max=1.0,
                    width=560,
                    label_width=110,
                )
            )

    out.append("<h3>Penetratie naar afstand</h3>")
    if area is None or not area.has(
        "year", "area_level", "distance_band", "population", "peer_penetration"
    ):
        out.append(_missing("De penetratie naar afstand", "market_area"))
    else:
        pc4 = [r for r in _rows_for_year(area, year) if r.get("area_level") == "pc4"]
        own_vals, peer_vals, supp = [], [], []
        n_known = _num(catch_row.get("n_persons")) if catch_row else None
        cum = {10: "share_within_10km", 25: "share_within_25km", 50: "share_within_50km"}
        shares = {0: 0.0, **{d: _num(catch_row.get(c)) for d, c in cum.items()}, 999: 1.0}
        edges = [(0, 10), (10, 25), (25, 50), (50, 999)]
        for band, (lo, hi) in zip(BANDS, edges, strict=True):
            rows = [r for r in pc4 if r.get("distance_band") == band]
            pop = sum(_num(r.get("population")) or 0 for r in rows)
            peer_rows = [r for r in rows if _num(r.get("peer_penetration")) is not None]
            peer_pop = sum(_num(r.get("population")) or 0 for r in peer_rows)
            peer = (
                (
                    sum(
                        _num(r["peer_penetration"]) * (_num(r.get("population")) or 0)
                        for r in peer_rows
                    )
                    / peer_pop
                )
                if peer_pop
                else None
            )
            own = None
            if n_known is not None and shares.get(lo) is not None and shares.get(hi) is not None:
                n_band = n_known * (shares[hi] - shares[lo])
                if round(n_band) == 0 or round(n_band) >= k:
                    own = 1000 * n_band / pop if pop else None
            own_vals.append(own)
            peer_vals.append(peer)
            supp.append(own is None and pop > 0)
        s_own = Series("uw penetratie", OWN, own_vals, supp)
        s_peer = Series("vergelijkingsgroep", PEER, peer_vals)
        suppressed_any |= any(supp)
        out.append(
            charts.bar_chart(
                [f"{b} km" for b in BANDS],
                [s_own, s_peer],
                fmt_pen,
                title="Penetratie per afstandsklasse",
                width=560,
                height=250,
            )
        )
        out.append('<p class="note">Bezoekers per 1.000 inwoners, naar afstand tot uw adres.</p>')

    out.append("<h3>Penetratie per gemeente</h3>")
    if area is None or not area.has("year", "area_level", "area_name", "n_persons", "penetration"):
        out.append(_missing("De penetratie per gemeente", "market_area"))
    else:
        gem = [r for r in _rows_for_year(area, year) if r.get("area_level") == "gemeente"]
        top = sorted((r for r in gem if r.get("n_persons")), key=lambda r: -r["n_persons"])[:12]
        if top:
            labels = [r.get("area_name") or r.get("area_code") for r in top]
            out.append(
                charts.hbar_chart(
                    labels,
                    [
                        Series("uw penetratie", OWN, [_num(r.get("penetration")) for r in top]),
                        Series(
                            "vergelijkingsgroep",
                            PEER,
                            [_num(r.get("peer_penetration")) for r in top],
                        ),
                    ],
                    fmt_pen,
                    title="Penetratie per gemeente",
                    label_width=150,
                )
            )
            out.append(
                '<p class="note">De 12 gemeenten waar de meeste van uw bezoekers wonen; bezoekers '
                "per 1.000 inwoners. Per postcodegebied (PC4) staan de cijfers in "
                "<code>market_area.csv</code>.</p>"
            )
        if "potential" in area.columns:
            pot = sorted(
                (r for r in gem if (_num(r.get("potential")) or 0) >= 1),
                key=lambda r: -r["potential"],
            )[:10]
            if pot:
                out.append(
                    "<h3>Gemeenten met de meeste groeiruimte</h3>"
                    '<p class="note">Groeiruimte = hoeveel bezoekers u er extra zou hebben met de '
                    "penetratie van uw vergelijkingsgroep. Index 100 = even hoog als de groep.</p>"
                    "<table><tr><th>Gemeente</th><th class='n'>Afstand</th><th class='n'>"
                    "Inwoners</th><th class='n'>Uw bezoekers</th><th class='n'>Uw penetratie"
                    "</th><th class='n'>Groep</th><th class='n'>Index</th><th class='n'>"
                    "Groeiruimte</th></tr>"
                )
                for r in pot:
                    supp = bool(r.get("suppressed"))
                    suppressed_any |= r.get("n_persons") is None and supp
                    out.append(
                        f"<tr><td>{escape(str(r.get('area_name') or r.get('area_code')))}</td>"
                        f"<td class='n'>{_value(_num(r.get('distance_km')), lambda v: fmt_int(v) + ' km', False, k)}</td>"
                        f"<td class='n'>{_value(_num(r.get('population')), fmt_int, False, k)}</td>"
                        f"<td class='n'>{_value(_num(r.get('n_persons')), fmt_int, supp, k)}</td>"
                        f"<td class='n'>{_value(_num(r.get('penetration')), fmt_pen, supp, k)}</td>"
                        f"<td class='n'>{_value(_num(r.get('peer_penetration')), fmt_pen, False, k)}</td>"
                        f"<td class='n'>{_value(_num(r.get('penetration_index')), fmt_int, supp, k)}</td>"
                        f"<td class='n'><b>+{fmt_int(r['potential'])}</b> bezoekers</td></tr>"
                    )
                out.append("</table>")

    age = tables.get("market_age")
    out.append("<h3>Leeftijd: uw bezoekers tegenover de bevolking om u heen</h3>")
    if age is None or not age.has("year", "age_band", "share", "population_share"):
        out.append(_missing("Het leeftijdsprofiel", "market_age"))
    else:
        rows = sorted(_rows_for_year(age, year), key=lambda r: r.get("band_order") or 0)
        if rows:
            radius = _num(rows[0].get("catchment_radius_km"))
            where = f"binnen {fmt_int(radius)} km" if radius else "in heel Nederland"
            s_own = _own_series("uw bezoekers", rows)
            s_pop = Series(
                f"inwoners {where}", POPULATION, [_num(r.get("population_share")) for r in rows]
            )
            suppressed_any |= any(s_own.suppressed)
            out.append(
                charts.bar_chart(
                    [f"{r['age_band']} jaar" for r in rows],
                    [s_own, s_pop],
                    fmt_pct0,
                    title="Leeftijdsprofiel",
                    height=260,
                )
            )
            index = _age_index_column(age)
            over = [r for r in rows if index and (_num(r.get(index)) or 0) >= 120]
            under = [r for r in rows if index and (_num(r.get(index)) or 1000) <= 80]
            lines = []
            if over:
                lines.append("oververtegenwoordigd: " + ", ".join(r["age_band"] for r in over))
            if under:
                lines.append("ondervertegenwoordigd: " + ", ".join(r["age_band"] for r in under))
            out.append(
                '<p class="note">Aandeel per leeftijdsgroep (leeftijd bij het eerste bezoek van '
                f"het jaar), naast het aandeel van die groep onder de inwoners {escape(where)}"
                + (f". Ten opzichte van de bevolking: {escape('; '.join(lines))}" if lines else "")
                + ".</p>"
            )
        else:
            out.append('<p class="note">Geen gegevens voor dit jaar.</p>')

    sector = tables.get("market_sector")
    if sector is not None and sector.has("gemeente_code", "discipline", "year", "penetration"):
        own_gem = None
        if area is not None and area.has("area_level", "area_code", "gemeente_code"):
            own_gem = next(
                (
                    r.get("gemeente_code")
                    for r in area.rows
                    if r.get("area_level") == "pc4" and r.get("area_code") == inst.pc4
                ),
                None,
            )
        rows = [
            r for r in sector.rows if r.get("gemeente_code") == own_gem and r.get("year") == year
        ]
        if rows:
            rows.sort(key=lambda r: -(_num(r.get("penetration")) or -1))
            name = rows[0].get("gemeente_naam") or own_gem
            labels = [
                discipline_nl(r["discipline"])
                + (" (uw discipline)" if r["discipline"] == inst.discipline else "")
                for r in rows
            ]
            s = _own_series("bezoekers per 1.000 inwoners", rows, "penetration")
            out.append(f"<h3>Cultuurbezoek in uw gemeente ({escape(str(name))})</h3>")
            out.append(
                '<p class="note">Sectorcijfers: bezoekers per 1.000 inwoners van uw gemeente, per '
                f"discipline, in {year}, over alle deelnemende instellingen samen.</p>"
            )
            out.append(
                charts.hbar_chart(labels, [s], fmt_pen, title="Sectorpenetratie", label_width=230)
            )
            if any(s.suppressed):
                out.append(
                    '<p class="note"><span class="supp">onderdrukt</span> = minder dan '
                    f"{k} personen, of een discipline met minder dan 5 instellingen: dan zou het "
                    "sectorcijfer iets over één instelling verraden.</p>"
                )
    if suppressed_any:
        out.append(_supp_note(k))
    return "".join(out)


# ---------------------------------------------------------------- deliveries

SOFT_PROBLEMS_NL = {
    "email_unparseable": "onleesbare e-mailadressen",
    "phone_unparseable": "onleesbare telefoonnummers",
    "ticket_type_unknown": "onbekend kaarttype (als overig geteld)",
    "channel_unknown": "onbekend verkoopkanaal (als overig geteld)",
    "birth_date_unparseable": "onleesbare geboortedatums",
    "research_opt_out_unknown": "onduidelijk bezwaar tegen onderzoek (als bezwaar geteld)",
    "discipline_unknown": "onbekende discipline (als overig geteld)",
    "text_truncated": "teksten ingekort tot 500 tekens",
    "unknown_columns": "onbekende kolommen (genegeerd)",
}
STATUS_NL = {"accepted": "geaccepteerd", "rejected": "afgekeurd", "duplicate": "dubbel"}
DELIVERIES_SHOWN = 20


def _attention(row: dict) -> str:
    """What a delivery's member should look at: the rules it broke, or its soft problems."""
    if row.get("status") == "rejected":
        return "afgekeurd om: " + str(row.get("rejected_for") or "zie het afkeurrapport")
    if row.get("status") == "duplicate":
        return "al eerder geleverd (" + str(row.get("duplicate_of") or "") + "): één keer geteld"
    found = [
        f"{fmt_int(n)} {label}"
        for column, label in SOFT_PROBLEMS_NL.items()
        if (n := _num(row.get(column)))
    ]
    return "; ".join(found) if found else "geen"


def _deliveries(tables: dict[str, Table]) -> str:
    """Section 4: the member's own files, newest first, with what to fix in the next export."""
    table = tables.get("deliveries")
    out = ["<h2>4. Uw leveringen</h2>"]
    if table is None or not table.has("status", "received_at", "rows_loaded"):
        return out[0] + _missing("Het overzicht van uw leveringen", "deliveries")
    rows = sorted(table.rows, key=lambda r: (str(r.get("received_at")), str(r.get("delivery_id"))),
                  reverse=True)  # fmt: skip
    if not rows:
        return out[0] + '<p class="missing">Er zijn nog geen bestanden van u verwerkt.</p>'
    by_status = {s: [r for r in rows if r.get("status") == s] for s in STATUS_NL}
    loaded = sum(_num(r.get("rows_loaded")) or 0 for r in rows)
    with_problems = [r for r in by_status["accepted"] if _attention(r) != "geen"]
    out.append(
        f"<p>{fmt_int(len(rows))} bestanden ontvangen: {fmt_int(len(by_status['accepted']))} "
        f"geaccepteerd ({fmt_int(loaded)} regels geladen), "
        f"{fmt_int(len(by_status['rejected']))} afgekeurd, "
        f"{fmt_int(len(by_status['duplicate']))} dubbel. "
        + (
            f"{fmt_int(len(with_problems))} geaccepteerde bestanden hadden kleine problemen: "
            "die regels tellen mee, maar zonder het onleesbare gegeven. Verhelp ze in uw "
            "volgende export.</p>"
            if with_problems
            else "De geaccepteerde bestanden hadden geen kleine problemen.</p>"
        )
    )
    cells = []
    for r in rows[:DELIVERIES_SHOWN]:
        received = escape(str(r.get("received_at") or "")[:16])
        cells.append(
            f"<tr><td>{received}</td><td>{escape(str(r.get('kind') or ''))}</td>"
            f"<td>{escape(STATUS_NL.get(str(r.get('status')), str(r.get('status'))))}</td>"
            f"<td class='n'>{escape(fmt_int(_num(r.get('rows_total')) or 0))}</td>"
            f"<td class='n'>{escape(fmt_int(_num(r.get('rows_loaded')) or 0))}</td>"
            f"<td>{escape(_attention(r))}</td>"
            f"<td><code>{escape(str(r.get('sha256') or '')[:12])}</code></td></tr>"
        )
    out.append(
        "<table><tr><th>Ontvangen (UTC)</th><th>Soort</th><th>Status</th><th class='n'>Regels"
        "</th><th class='n'>Geladen</th><th>Aandachtspunten</th><th>Controlegetal</th></tr>"
        + "".join(cells)
        + "</table>"
    )
    every = (
        f"De nieuwste {DELIVERIES_SHOWN} staan hier; alle"
        if len(rows) > DELIVERIES_SHOWN
        else "Alle"
    )
    out.append(
        f'<p class="note">{every} bestanden staan in <code>csv/deliveries.csv</code>. Het '
        "controlegetal is het begin van de SHA-256 van het bestand (<code>sha256sum</code>): zo "
        "weet u welk bestand het was. Een afgekeurd bestand laadt niets; het afkeurrapport noemt "
        "de regels en kolommen.</p>"
    )
    return "".join(out)


# ---------------------------------------------------------------- page


def report_year(tables: dict[str, Table]) -> int | None:
    years = [
        r.get("year")
        for name in ("benchmark", "loyalty_summary", "market_catchment")
        for r in (tables[name].rows if name in tables else [])
        if r.get("year") is not None
    ]
    return max(years) if years else None


def render_report(
    inst: Institution, tables: dict[str, Table], release: ReleaseInfo, omitted: Sequence[str] = ()
) -> str:
    year = report_year(tables)
    title = f"Publieksrapport {inst.name}" + (f" {year}" if year else "")
    parts = [
        '<!doctype html><html lang="nl"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>",
        f"<header><h1>{escape(inst.name)}</h1><div class='sub'>Publieksrapport "
        f"{year or ''} · {escape(discipline_nl(inst.discipline))} · Publieksdata, release "
        f"{escape(release.release_id)} ({escape(release.created_at[:10])})</div></header>",
    ]
    provisional = year is not None and _year_is_open(year, release.today)
    howto = [
        "Dit rapport gaat alleen over <b>uw eigen publiek</b>. Waar u zich vergelijkt, ziet u "
        "het gemiddelde van een groep vergelijkbare instellingen, nooit de cijfers van een "
        "andere instelling.",
        "Een <b>bezoeker</b> is één persoon, ook als die vaker kwam; kaarten zonder naam of "
        "e-mailadres tellen wel mee bij de kaarten, niet bij de bezoekers.",
        f'<span class="supp">onderdrukt</span> staat waar minder dan {release.k} personen achter '
        "een cijfer zitten: dan tonen we het niet, zodat niemand herkenbaar is.",
        "Alle cijfers gaan over een kalenderjaar, geteld op de datum van de voorstelling of het "
        "bezoek.",
    ]
    if provisional:
        howto.append(
            f"<b>{year} is nog niet afgesloten</b> (late leveringen tot 1 februari {year + 1}): "
            "de cijfers zijn voorlopig"
            + (
                " en aantallen personen wijken bewust een klein beetje (hooguit 2) af, zodat "
                "releases onderling niets over één persoon verraden"
                if release.open_years_perturbed
                else ""
            )
            + "."
        )
    parts.append(
        '<section class="howto"><b>Zo leest u dit rapport</b><ul>'
        + "".join(f"<li>{h}</li>" for h in howto)
        + "</ul></section>"
    )
    if year is None:
        parts.append(
            '<p class="missing">Er zijn in deze release nog geen cijfers over uw instelling.</p>'
        )
    else:
        parts.append(f"<h2>Kerncijfers {year}</h2>" + _key_figures(tables, year))
        parts.append(_highlights(tables, year))
        parts.append(_benchmark(tables, year, release.k))
        parts.append(_loyalty(tables, year, release.k))
        parts.append(_market(tables, year, release.k, inst))
    parts.append(_deliveries(tables))
    if omitted:
        parts.append(
            '<p class="note">Niet in dit pakket: '
            + escape(", ".join(omitted))
            + " (deze tabellen zouden andere instellingen kunnen noemen).</p>"
        )
    parts.append(
        "<footer>Bron: Publieksdata, de gedeelde publieksdata van de culturele sector. "
        "Gegevens zijn gepseudonimiseerd en alleen in groepen van minstens "
        f"{release.k} personen gepubliceerd. De tabellen achter dit rapport staan in deze map "
        "(map <code>csv/</code> en <code>parquet/</code>); <code>data_dictionary.csv</code> "
        "beschrijft elke kolom. Release "
        f"{escape(release.release_id)}"
        + (f", code {escape(release.code_version)}" if release.code_version else "")
        + ".</footer></main></body></html>"
    )
    return "".join(parts)
