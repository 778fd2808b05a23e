"""Writes the corpus of awkward and bad deliveries (run once; the files are committed).

Each file's expected outcome is in expected.json. Run: python tests/corpus/make_corpus.py
"""

import io
import zipfile
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from openpyxl import Workbook

HERE = Path(__file__).parent
H = "ticket_id,order_id,event_id,event_start,sold_at,price,email,phone,postcode"


def rows(n=12, start="2025-03-01 20:00", sold="2025-02-01 10:00", price="12.50", sep=","):
    return [
        sep.join([f"T{i}", f"O{i}", "E1", start, sold, price, f"corpus{i}@example.nl",
                  f"06-5555{i:04d}", "1011 AB"])
        for i in range(n)
    ]  # fmt: skip


def write(name: str, content: str | bytes, encoding: str = "utf-8") -> None:
    data = content.encode(encoding) if isinstance(content, str) else content
    (HERE / name).write_bytes(data)


def main() -> None:
    good = [H, *rows()]
    write("good_canonical.csv", "\n".join(good) + "\n")
    write("empty.csv", b"")
    write("header_only.csv", H + "\n")
    write("binary_junk.csv", bytes(range(256)) * 8)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("tickets.csv", "\n".join(good))
    write("zip_renamed.csv", buf.getvalue())
    write("report.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")
    ragged = [H, *rows(5)]
    ragged[3] = ragged[3] + ",extra,fields"
    write("ragged_rows.csv", "\n".join(ragged) + "\n")
    write("missing_price_column.csv", "\n".join([H.replace(",price", ""), *[
        ",".join(r.split(",")[:5] + r.split(",")[6:]) for r in rows()]]) + "\n")  # fmt: skip
    bad_date = [H, *rows()]
    bad_date[4] = bad_date[4].replace("2025-03-01 20:00", "31-02-2025")
    write("impossible_date.csv", "\n".join(bad_date) + "\n")
    neg = [H, *rows()]
    neg[2] = neg[2].replace("12.50", "-3.00")
    write("negative_price.csv", "\n".join(neg) + "\n")
    write("price_too_high.csv", "\n".join([H, *rows(price="25000.00")]) + "\n")
    dup = [H, *rows()]
    dup[5] = dup[5].replace("T4,", "T1,", 1)
    write("duplicate_ticket_id.csv", "\n".join(dup) + "\n")
    write(
        "event_before_1990.csv",
        "\n".join([H, *rows(start="1985-05-01 20:00", sold="1985-04-01 10:00")]) + "\n",
    )
    write("sold_three_years_early.csv", "\n".join([H, *rows(sold="2022-01-01 10:00")]) + "\n")
    status = [H + ",status", *[r + ",sold" for r in rows()]]
    status[3] = status[3][: -len("sold")] + "lost"
    write("unknown_status.csv", "\n".join(status) + "\n")
    nl_h = "Ticketnummer;Bestelnummer;Voorstelling;Event_start;Verkoopdatum;Prijs;E-mailadres;Woonplaats;Geslacht"
    nl_rows = [
        f"{100 + i};{500 + i};E1;01-03-2025 20:00;15-01-2025 09:30;{12 + i},50;"
        f"b\u00e9atrice{i}@example.nl;Li\u00e8ge;vrouw"
        for i in range(12)
    ]
    write("latin1_semicolon_decimal_comma.csv", "\r\n".join([nl_h, *nl_rows]) + "\r\n", "cp1252")
    write("utf8_bom.csv", "\ufeff" + "\n".join(good) + "\n")
    tab = [H.replace(",", "\t"), *rows(sep="\t")]
    write("tab_delimited.tsv", "\n".join(tab) + "\n")
    quoted = [H + ",city", *[r + ',"Den Haag, ""Scheveningen""\nachterom"' for r in rows()]]
    write("quoted_newlines.csv", "\n".join(quoted) + "\n")
    write("extra_columns.csv", "\n".join([H + ",loyalty_tier,notes",
                                          *[r + ",gold,n/a" for r in rows()]]) + "\n")  # fmt: skip
    write("unknown_ticket_type.csv", "\n".join([H + ",ticket_type,channel",
                                                *[r + ",vip,carrier pigeon" for r in rows()]]) + "\n")  # fmt: skip
    write("no_header.csv", "\n".join(rows()) + "\n")
    write("events_good.csv", "event_id,starts_at,discipline,event_name,capacity\n"
          'E1,2025-03-01 20:00,theater,"Hamlet, de musical",250\nE2,02-03-2025 14:00,dans,Bolero,\n')  # fmt: skip
    write("events_bad_capacity.csv", "event_id,starts_at,discipline,capacity\n"
          "E1,2025-03-01 20:00,theater,-5\nE2,2025-03-02 20:00,theater,veel\n")  # fmt: skip
    # XLSX: real Excel dates, a number stored as text, numeric ids
    wb = Workbook()
    ws = wb.active
    ws.append(["Ticketnummer", "Bestelnummer", "Voorstelling", "event_start", "Verkoopdatum",
               "Prijs", "Emailadres"])  # fmt: skip
    for i in range(12):
        ws.append([1000 + i, 77, "E1", datetime(2025, 3, 1, 20, 0), datetime(2025, 2, 1, 9, 0),
                   "12.50" if i % 2 else 12.5, f"xlsx{i}@example.nl"])  # fmt: skip
    wb.save(HERE / "serial_dates.xlsx")
    # XLSX whose dates are bare serial numbers (no date format)
    wb = Workbook()
    ws = wb.active
    ws.append(["ticket_id", "order_id", "event_id", "event_start", "sold_at", "price"])
    for i in range(12):
        ws.append([f"S{i}", "O1", "E1", 45717.8333333, 45689.375, 10])
    wb.save(HERE / "bare_serial_numbers.xlsx")
    table = pa.table({
        "ticket_id": [f"P{i}" for i in range(12)], "order_id": ["O1"] * 12, "event_id": ["E1"] * 12,
        "event_start": pa.array([datetime(2025, 3, 1, 20)] * 12, pa.timestamp("us")),
        "sold_at": pa.array([datetime(2025, 2, 1, 9)] * 12, pa.timestamp("us")),
        "price": [12.5] * 12, "email": [f"pq{i}@example.nl" for i in range(12)],
    })  # fmt: skip
    pq.write_table(table, HERE / "typed.parquet")


if __name__ == "__main__":
    main()
