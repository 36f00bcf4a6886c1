"""The demo company's facts as the generator uses them (docs/demo-company.md is the prose version).

Tests check these against tools/*.yaml and knowledge/, so the SOPs, the policy and the data tell one story.
"""

from __future__ import annotations

from datetime import date

START = date(2025, 1, 1)
END = date(2026, 10, 31)
LEADS_PER_MONTH = 2700  # at --scale 1, before seasonality and growth
GROWTH_PER_MONTH = 0.008
# Calendar-month seasonality (Jan..Dec): summer and December are quiet, September-November busy.
SEASONALITY = (0.95, 1.0, 1.1, 1.0, 1.05, 0.95, 0.8, 0.75, 1.1, 1.2, 1.15, 0.7)

REGIONS = ("NA", "EMEA", "APAC", "LATAM")
REGION_SHARE = (0.50, 0.28, 0.14, 0.08)
COUNTRIES = {
    "NA": (("US", 0.85), ("CA", 0.15)),
    "EMEA": (
        ("GB", 0.30),
        ("DE", 0.20),
        ("FR", 0.15),
        ("NL", 0.10),
        ("IE", 0.05),
        ("SE", 0.05),
        ("ES", 0.05),
        ("AT", 0.04),
        ("CH", 0.06),
    ),
    "APAC": (("AU", 0.35), ("JP", 0.25), ("SG", 0.20), ("IN", 0.20)),
    "LATAM": (("BR", 0.50), ("MX", 0.30), ("CO", 0.10), ("AR", 0.10)),
}

# Touchpoint channels. The first six are driven by campaigns; the last three have none.
CHANNELS = (
    "paid_search",
    "paid_social",
    "email",
    "webinar",
    "events",
    "content_syndication",
    "organic_search",
    "direct",
    "referral",
)
CAMPAIGN_CHANNELS = CHANNELS[:6]
# Share of new leads by the channel of their first touch.
SOURCE_SHARE = {
    "paid_search": 0.22,
    "paid_social": 0.18,
    "content_syndication": 0.15,
    "webinar": 0.12,
    "events": 0.06,
    "email": 0.04,
    "organic_search": 0.12,
    "direct": 0.06,
    "referral": 0.05,
}
# Share of later (non-first) touches by channel.
TOUCH_SHARE = {
    "email": 0.35,
    "webinar": 0.08,
    "paid_search": 0.10,
    "paid_social": 0.10,
    "organic_search": 0.14,
    "direct": 0.11,
    "content_syndication": 0.04,
    "events": 0.05,
    "referral": 0.03,
}
TOUCH_TYPE = {
    "paid_search": "ad_click",
    "paid_social": "ad_click",
    "email": "email_click",
    "webinar": "webinar_registration",
    "events": "event_visit",
    "content_syndication": "content_download",
    "organic_search": "web_visit",
    "direct": "web_visit",
    "referral": "web_visit",
}

# program type -> (naming code, touchpoint channel); must match tools/campaign_policy.yaml
PROGRAM_TYPES = {
    "webinar": ("WBN", "webinar"),
    "email": ("EML", "email"),
    "paid_social": ("PSO", "paid_social"),
    "paid_search": ("PSE", "paid_search"),
    "event": ("EVT", "events"),
    "content_syndication": ("CSY", "content_syndication"),
    "nurture": ("NUR", "email"),
}
# True cost per lead (USD) the generator spends at; tools/campaign_policy.yaml alert thresholds sit ~35% above.
TRUE_CPL = {
    "paid_search": {"NA": 120, "EMEA": 110, "APAC": 85, "LATAM": 65},
    "paid_social": {"NA": 145, "EMEA": 125, "APAC": 90, "LATAM": 70},
    "content_syndication": {"NA": 80, "EMEA": 75, "APAC": 60, "LATAM": 50},
    "events": {"NA": 320, "EMEA": 290, "APAC": 210, "LATAM": 180},
    "webinar": {"NA": 85, "EMEA": 80, "APAC": 65, "LATAM": 50},
}
# Ad delivery: cost per 1,000 impressions and click-through rate by platform.
PLATFORM_CPM_CTR = {
    "google_ads": (62.0, 0.036),
    "microsoft_ads": (48.0, 0.031),
    "linkedin_ads": (38.0, 0.0055),
    "meta_ads": (9.5, 0.011),
}

PEOPLE = {
    "Dana Whitfield": "U07DW0001",
    "Priya Raman": "U07PR0002",
    "Marcus Okafor": "U07MO0003",
    "Lena Vogel": "U07LV0004",
    "Sam Carter": "U07SC0005",
    "Hiro Tanaka": "U07HT0006",
    "Ana Souza": "U07AS0007",
    "Jordan Blake": "U07JB0008",
    "Rachel Kim": "U07RK0009",
    "Tom Reyes": "U07TR0010",
    "Nina Petrova": "U07NP0011",
    "Omar Haddad": "U07OH0012",
}
REGION_OWNER = {"NA": "Sam Carter", "EMEA": "Lena Vogel", "APAC": "Hiro Tanaka", "LATAM": "Ana Souza"}
PROGRAM_OWNER = {
    "webinar": "Jordan Blake",
    "content_syndication": "Jordan Blake",
    "email": "Priya Raman",
    "nurture": "Priya Raman",
}

# Campaign plan per quarter and region: program type -> [(topic, platform)].
QUARTERLY_PROGRAMS = {
    "paid_search": [("Brand", "google_ads"), ("AI-Ops", "google_ads"), ("Competitor", "microsoft_ads")],
    "paid_social": [("AI-Ops", "linkedin_ads"), ("Incident-Response", "linkedin_ads"), ("Observability", "meta_ads")],
    "content_syndication": [("AIOps-Buyers-Guide", "techtarget"), ("SRE-Report", "netline")],
    "email": [("Newsletter", "marketo"), ("Product-Update", "marketo")],
    "event": [("Summit", "event_costs")],
}
WEBINAR_TOPICS = (
    "AI-Ops",
    "Incident-Response",
    "Observability",
    "Cloud-Cost",
    "Runbook-Automation",
    "Data-Quality",
    "Platform-Launch",
)
EVENT_TOPICS = ("AIOps-Summit", "SRE-Day", "Cloud-Expo", "DevOps-World")
UTM_SOURCE = {
    "google_ads": "google",
    "microsoft_ads": "bing",
    "linkedin_ads": "linkedin",
    "meta_ads": "meta",
    "techtarget": "techtarget",
    "netline": "netline",
    "marketo": "marketo",
    "on24": "on24",
    "event_costs": "event",
}
UTM_MEDIUM = {
    "webinar": "webinar",
    "email": "email",
    "nurture": "email",
    "paid_social": "paid-social",
    "paid_search": "cpc",
    "event": "event",
    "content_syndication": "syndication",
}
EMAIL_LIST_SIZE = {"NA": 40000, "EMEA": 22000, "APAC": 11000, "LATAM": 6000}

COMPANY_SIZE_BANDS = ("1-50", "51-200", "201-1000", "1001-5000", "5000+")
COMPANY_SIZE_SHARE = (0.22, 0.30, 0.26, 0.14, 0.08)
COMPANY_SIZE_RANGE = ((5, 50), (51, 200), (201, 1000), (1001, 5000), (5001, 60000))
INDUSTRIES = (
    "Software",
    "Financial Services",
    "Healthcare",
    "Retail",
    "Manufacturing",
    "Telecommunications",
    "Public Sector",
    "Media",
)
SENIORITY = ("individual_contributor", "manager", "director", "vp", "c_level")
SENIORITY_SHARE = (0.38, 0.30, 0.18, 0.09, 0.05)
OPPORTUNITY_MEDIAN_USD = (12000, 22000, 38000, 65000, 110000)  # by company size band

# The lead-score label's generating process (documented in knowledge/ and docs/demo-company.md).
LABEL_INTERCEPT = -4.0
LABEL_COEF = {
    "seniority_level": 0.45,
    "log1p_web_visits_30d": 0.35,
    "email_clicks_90d": 0.12,
    "webinar_attended": 0.90,
    "demo_request": 1.80,
    "intent_centered": 0.025,
    "is_personal_email": -1.50,
}
LABEL_SIZE_EFFECT = (-0.6, 0.0, 0.4, 0.7, 0.5)
LABEL_CHANNEL_EFFECT = {
    "paid_search": 0.3,
    "paid_social": -0.2,
    "content_syndication": -0.7,
    "events": 0.4,
    "webinar": 0.2,
    "email": 0.0,
    "organic_search": 0.3,
    "direct": 0.5,
    "referral": 0.6,
}
MQL_THRESHOLD = 65
HORIZON_DAYS = 90

# Injected incidents (docs/demo-company.md "What happened in the data").
CPL_SPIKE = {
    "campaign": "2026-Q4_PSO_AI-Ops_EMEA",
    "from": date(2026, 10, 3),
    "until": date(2026, 10, 29),  # audience expansion switched off on 2026-10-30
    "spend_factor": 3.4,
}
BOUNCE_SPIKE = {
    "campaign": "2026-Q3_EML_Product-Update_NA",
    "date": date(2026, 9, 16),
    "hard_bounce_rate": 0.079,
    "spam_rate": 0.0026,
    "unsubscribe_rate": 0.009,
}
DUPLICATE_IMPORT = {"date": date(2026, 3, 12), "leads_per_scale": 350}

FIRST_NAMES = (
    "Alex",
    "Maria",
    "James",
    "Priya",
    "Chen",
    "Sofia",
    "Liam",
    "Aisha",
    "Noah",
    "Elena",
    "Mateo",
    "Yuki",
    "Oliver",
    "Fatima",
    "Lucas",
    "Hannah",
    "Arjun",
    "Chloe",
    "Diego",
    "Ingrid",
    "Kwame",
    "Mei",
    "Jonas",
    "Laura",
    "Rafael",
    "Sara",
    "Tomas",
    "Zoe",
    "Omar",
    "Grace",
)
LAST_NAMES = (
    "Smith",
    "Garcia",
    "Chen",
    "Patel",
    "Meier",
    "Rossi",
    "Kim",
    "Nguyen",
    "Silva",
    "Dubois",
    "Johansson",
    "Tanaka",
    "Okafor",
    "Novak",
    "Brown",
    "Lopez",
    "Schmidt",
    "Khan",
    "Murphy",
    "Costa",
    "Fischer",
    "Walsh",
    "Ito",
    "Jensen",
    "Moreau",
    "Santos",
    "Clark",
    "Singh",
    "Hughes",
    "Ward",
)
_COMPANY_A = (
    "Blue",
    "North",
    "Iron",
    "Silver",
    "Cedar",
    "Bright",
    "Quantum",
    "Summit",
    "Harbor",
    "Atlas",
    "Nova",
    "Pioneer",
    "Granite",
    "Vertex",
    "Crescent",
    "Maple",
    "Orbit",
    "Falcon",
    "Beacon",
    "Delta",
)
_COMPANY_B = (
    "Systems",
    "Health",
    "Bank",
    "Retail",
    "Logistics",
    "Telecom",
    "Labs",
    "Media",
    "Foods",
    "Energy",
    "Insurance",
    "Networks",
    "Works",
    "Group",
    "Partners",
    "Capital",
    "Robotics",
    "Cloud",
    "Motors",
    "Analytics",
)
_COMPANY_C = ("", " Global", " Digital", " International", " Solutions", " Co", " One", " Tech", " Data", " Plus")


def company_name(i: int) -> str:
    """The i-th demo company name (4,000 distinct names for i in 0..3999)."""
    return f"{_COMPANY_A[i % 20]} {_COMPANY_B[(i // 20) % 20]}{_COMPANY_C[(i // 400) % 10]}"
