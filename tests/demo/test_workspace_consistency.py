"""knowledge/, tools/*.yaml and the demo warehouse tell one story: these tests fail when they drift apart."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import duckdb
import pytest
import yaml

from mopsbot.demo import company as co

REPO = Path(__file__).resolve().parents[2]
KNOWLEDGE = REPO / "knowledge"
POLICY = yaml.safe_load((REPO / "tools" / "campaign_policy.yaml").read_text())
APPROVALS = yaml.safe_load((REPO / "tools" / "approvals.yaml").read_text())
METRICS = yaml.safe_load((REPO / "tools" / "metrics.yaml").read_text())
PEOPLE = {p["name"] for p in APPROVALS["people"].values()}
REGIONS = POLICY["regions"]


def _doc(path: Path) -> tuple[dict, str]:
    _, front, body = path.read_text(encoding="utf-8").split("---", 2)
    return yaml.safe_load(front), body


DOCS = {p.stem: _doc(p) for p in sorted(KNOWLEDGE.rglob("*.md"))}


def body(doc_id: str) -> str:
    return DOCS[doc_id][1]


def table_rows(text: str, label: str) -> list[list[str]]:
    """Cells of markdown table rows whose first cell starts with `label` (case-insensitive)."""
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.lstrip().startswith("|") and cells[0].lower().replace("*", "").startswith(label.lower()):
            rows.append(cells)
    return rows


def numbers(cells: list[str]) -> list[int]:
    return [int(m.replace(",", "")) for c in cells for m in re.findall(r"\d[\d,]*", c)]


@pytest.fixture(scope="module")
def con(warehouse: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(warehouse), read_only=True)


# --- knowledge/ ---------------------------------------------------------------------------------------------


def test_at_least_30_documents_with_valid_front_matter() -> None:
    assert len(DOCS) >= 30
    for doc_id, (front, text) in DOCS.items():
        assert set(front) >= {"title", "owner", "visibility", "updated", "tags"}, doc_id
        assert front["visibility"] in {"public", "ops", "restricted"}, doc_id
        assert isinstance(front["updated"], date), doc_id
        assert isinstance(front["tags"], list) and front["tags"], doc_id
        assert front["owner"] in PEOPLE, f"{doc_id}: owner {front['owner']} is not in tools/approvals.yaml"
        assert len(text.split()) > 200, f"{doc_id} is too thin to answer questions"


def test_every_visibility_level_is_used() -> None:
    assert {f["visibility"] for f, _ in DOCS.values()} == {"public", "ops", "restricted"}


def test_policy_rules_cite_documents_that_exist() -> None:
    cited = {v["sop"] for v in POLICY["program_types"].values()}
    cited |= {v["sop"] for v in POLICY.values() if isinstance(v, dict) and "sop" in v}
    assert cited <= set(DOCS), cited - set(DOCS)


LABELS = {
    "paid_search": "Paid search",
    "paid_social": "Paid social",
    "content_syndication": "Content syndication",
    "events": "Event",
    "webinar": "Webinar",
    "email": "Email",
    "nurture": "Nurture",
    "event": "Event",
}


def test_cpl_sop_states_the_policy_thresholds() -> None:
    text = body("sop-paid-media-cpl-guardrails")
    for channel, by_region in POLICY["cpl_thresholds"].items():
        if not isinstance(by_region, dict):
            continue
        rows = table_rows(text, LABELS[channel])
        assert rows, f"no threshold row for {channel}"
        assert numbers(rows[0][1:])[:4] == [by_region[r] for r in REGIONS], channel
    assert f"{POLICY['cpl_thresholds']['min_leads_for_breach']} leads" in text


def test_budget_sop_states_the_caps_and_tiers() -> None:
    text = body("sop-budget-approval-thresholds")
    for ptype, by_region in POLICY["budget_caps"].items():
        if not isinstance(by_region, dict):
            continue
        rows = table_rows(text, LABELS.get(ptype, ptype))
        assert rows, f"no cap row for {ptype}"
        assert numbers(rows[0][1:])[:4] == [by_region[r] for r in REGIONS], ptype
    for tier in POLICY["budget_approval"]["tiers"]:
        if tier["max_usd"]:
            assert f"{tier['max_usd']:,}" in text


def test_lifecycle_sop_states_mql_rule_and_slas() -> None:
    text = body("sop-lifecycle-stages-mql-sql")
    assert str(co.MQL_THRESHOLD) in text
    for sla in ("1 business hour", "24 business hours", "14 days"):
        assert sla in text, sla


def test_naming_sop_lists_codes_and_vocabularies() -> None:
    text = body("sop-utm-naming-conventions")
    for code, _channel in co.PROGRAM_TYPES.values():
        assert code in text
    for word in POLICY["utm"]["sources"] + POLICY["utm"]["mediums"]:
        assert f"`{word}`" in text or f" {word} " in text, word
    assert POLICY["naming"]["example"] in text


def test_model_card_documents_the_generating_process() -> None:
    text = body("model-card-lead-score")
    assert f"{co.LABEL_INTERCEPT:.1f}" in text
    for value in co.LABEL_COEF.values():
        assert f"{abs(value):.2f}".rstrip("0").rstrip(".") in text or f"{abs(value)}" in text, value
    assert "90" in text


def test_runbooks_name_the_injected_incidents() -> None:
    assert co.CPL_SPIKE["campaign"] in body("runbook-cpl-spike") + body("sop-paid-media-cpl-guardrails")
    assert co.BOUNCE_SPIKE["campaign"] in body("runbook-bounce-spike")
    assert str(co.BOUNCE_SPIKE["date"]) in body("runbook-bounce-spike")
    assert str(co.DUPLICATE_IMPORT["date"]) in body("sop-data-hygiene-dedup") + body("incident-log-2026")
    factor = f"{co.CPL_SPIKE['spend_factor']}x"
    assert factor in body("runbook-cpl-spike") or factor in body("sop-paid-media-cpl-guardrails")


def test_warehouse_doc_columns_exist(con: duckdb.DuckDBPyConnection) -> None:
    """Every column the warehouse doc lists (first cell `name` of a table under a '## <table>' heading) exists."""
    text = body("stack-warehouse-mops-dw")
    actual = {
        t: {c[0] for c in con.execute(f"DESCRIBE {t}").fetchall()} for (t,) in con.execute("SHOW TABLES").fetchall()
    }
    checked = 0
    for section in re.split(r"^#+ ", text, flags=re.M)[1:]:
        heading = section.split("\n", 1)[0]
        table = next((t for t in actual if re.search(rf"`?{t}`?", heading)), None)
        if not table:
            continue
        for col in re.findall(r"^\|\s*`(\w+)`", section, flags=re.M):
            assert col in actual[table], f"{table}.{col} is documented but not in the warehouse"
            checked += 1
    assert checked >= 30


# --- tools/*.yaml against the data ----------------------------------------------------------------------------


def test_program_types_and_codes_match_the_generator() -> None:
    assert {k: (v["code"], v["channel"]) for k, v in POLICY["program_types"].items()} == co.PROGRAM_TYPES
    assert set(POLICY["channels"]) == set(co.CHANNELS)
    assert list(co.REGIONS) == REGIONS


def test_every_channel_and_region_of_the_policy_is_in_the_data(con: duckdb.DuckDBPyConnection) -> None:
    channels = {c for (c,) in con.execute("SELECT DISTINCT channel FROM fct_touchpoint").fetchall()}
    assert set(POLICY["channels"]) == channels
    for table in ("dim_campaign", "dim_lead", "fct_touchpoint", "fct_opportunity"):
        regions = {r for (r,) in con.execute(f"SELECT DISTINCT region FROM {table}").fetchall()}
        assert regions == set(REGIONS), table
    ptypes = {p for (p,) in con.execute("SELECT DISTINCT program_type FROM dim_campaign").fetchall()}
    assert ptypes == set(POLICY["program_types"])


def test_campaigns_follow_naming_utm_budget_and_consent_rules(con: duckdb.DuckDBPyConnection) -> None:
    pattern = re.compile(POLICY["naming"]["pattern"])
    slug = re.compile(POLICY["utm"]["slug_pattern"])
    rows = con.execute("""SELECT campaign_name, program_type, region, start_date, utm_source, utm_medium,
                                 utm_campaign, budget_usd, owner_name, owner_slack_id, audience_segment
                          FROM dim_campaign""").fetchall()
    for name, ptype, region, start, src, medium, utm_campaign, budget, owner, owner_id, segment in rows:
        m = pattern.match(name)
        assert m, name
        assert (m["year"], m["quarter"], m["code"], m["region"]) == (
            str(start.year),
            str((start.month - 1) // 3 + 1),
            POLICY["program_types"][ptype]["code"],
            region,
        )
        assert src in POLICY["utm"]["sources"] and medium == POLICY["utm"]["medium_by_program_type"][ptype], name
        assert utm_campaign == name.lower() and all(slug.match(p) for p in utm_campaign.split("_")), name
        assert float(budget) <= POLICY["budget_caps"][ptype][region], f"{name} budget {budget} over the cap"
        assert APPROVALS["people"][owner_id]["name"] == owner
        if ptype in ("email", "nurture") and region in POLICY["consent"]["consent_required_regions"]:
            assert segment.endswith(POLICY["consent"]["consented_segment_suffix"]), name


def test_the_only_cpl_breach_is_the_injected_one(con: duckdb.DuckDBPyConnection) -> None:
    rules = POLICY["cpl_thresholds"]
    rows = con.execute("""
        WITH s AS (SELECT date_trunc('month', a.date) m, c.channel, c.region, sum(a.spend) spend
                   FROM fct_ad_daily a JOIN dim_campaign c USING (campaign_id) GROUP BY ALL),
             l AS (SELECT date_trunc('month', d.created_at) m, c.channel, c.region, count(*) leads
                   FROM dim_lead d JOIN dim_campaign c ON c.campaign_id = d.source_campaign_id GROUP BY ALL)
        SELECT strftime(m, '%Y-%m'), channel, region, spend / leads, leads FROM s JOIN l USING (m, channel, region)
    """).fetchall()
    breaches = [
        (m, ch, r) for m, ch, r, cpl, leads in rows if leads >= rules["min_leads_for_breach"] and cpl > rules[ch][r]
    ]
    assert breaches == [("2026-10", "paid_social", "EMEA")]


def test_metric_catalog_names_real_columns(con: duckdb.DuckDBPyConnection) -> None:
    from mopsbot.metrics.catalog import load_catalog

    # the loader checks every column a measure, filter, join or dimension names against the warehouse's columns
    columns: dict[str, set[str]] = {}
    for table, column in con.execute("SELECT table_name, column_name FROM information_schema.columns").fetchall():
        columns.setdefault(table, set()).add(column)
    catalog = load_catalog(REPO / "tools" / "metrics.yaml", {t: frozenset(c) for t, c in columns.items()})
    for name, d in METRICS["dimensions"].items():
        for table, column in d.get("columns", {}).items():
            if "values" in d and table in catalog.columns:
                found = {v for (v,) in con.execute(f"SELECT DISTINCT {column} FROM {table}").fetchall()}
                assert found <= set(d["values"]) | {None}, f"dimension {name}: {found - set(d['values'])}"


def test_approvals_people_cover_every_owner_in_the_data(con: duckdb.DuckDBPyConnection) -> None:
    ids = {i for (i,) in con.execute("SELECT DISTINCT owner_slack_id FROM dim_campaign").fetchall()}
    assert ids <= set(APPROVALS["people"])
    assert set(co.PEOPLE.values()) == set(APPROVALS["people"])
    for group in APPROVALS["groups"].values():
        assert set(group["members"]) <= set(APPROVALS["people"])
