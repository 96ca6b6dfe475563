"""Published figures the synthetic city is built from, and every assumption it needs besides.

The city is generated, never real people. This module is the one place where numbers enter the
generator:

* ``PUBLISHED``: public aggregate figures, each with its source (copied from the project's
  ``shared/scenario/FIGURES.md``); "derived" marks arithmetic on cited figures.
* ``ASSUMPTIONS``: every number that no published figure backs, named, with its value and the
  reasoning. If you change one, change it here; ``generator.py`` contains no bare constants that
  shape the population.
* ``derived_rates()``: the per-person and per-household probabilities the generator draws with,
  computed from the two lists above (the arithmetic is shown, so it can be checked).

Sources (from FIGURES.md)
-------------------------
Shanghai, 2020 census and after:

- permanent residents (2020-11-01) 24,870,895 -- 7th national census, district table reproduced at
  citypopulation.de (China > Shanghai > admin).
- 16 districts; population, area and centroid per district in ``data/shanghai_districts.csv`` --
  census table as above; areas from district statistics; centroids from a public map-library data
  file (coordinate system not stated: treat as approximate, GCJ-02 likely).
- average persons per family household (2020) 2.32 -- 2020 census bulletin.
- family households (2010) 8,251,160 (average size 2.49) -- 2010 Shanghai census bulletin.
- households used for a 2021 city-wide gift pack: "some 8 million families" -- Shine, Jan 2021.
- aged 60+ (2020) 5.82 M = 23.4 % -- 2020 census via China Daily.
- aged 65+ (2020) 16.3 %; aged 0-14 (2020) 9.8 % -- 2020 census.
- registered 80+ (end 2021) 15.5 % of the 60+ group (derived ~3.6 % of all) -- Shine, Jul 2022,
  citing the Civil Affairs Bureau.
- seniors living alone (end 2021) 318,300 -- same.
- births (2021) 116,000 -- 2021 Shanghai statistical communique.
- infants under 2: derived ~244,000 (births 2020 + 2021).
- pregnant at any one time: derived ~89,000 (116,000 x 40/52).
- hypertension, urban adults in China 23.4 % (40.7 % of them on medication) -- China Hypertension
  Survey, Circulation 2018.
- diabetes, Shanghai adults 20-79: 11.3 % -- Cities Changing Diabetes programme estimate.
- dialysis 174-379 per million in China (2011-2017) -- Sci. Rep. 2020; a Pudong temporary centre
  served ~500 patients 3x/week in 2022 -- China Daily Apr 2022.

The 2022 lockdown:

- Pudong from 28 Mar, city-wide from 1 Apr, strict until 31 May 2022 -- China Daily; Front.
  Pediatr. 2023.
- zoned communities on 11 Apr 2022: 7,624 sealed ("closed-off"), 2,460 controlled, 7,565
  precautionary: 17,649 in all -- Xinhua, 11 Apr 2022.
- the "last 100 metres" failed: couriers locked in -- Xinhua and Global Times, Apr 2022.
- residents' committees (2019) 4,463 city-wide -- Civil Affairs Bureau tables.
- a compound's volunteer team started with 7 residents and grew to about 40 within a month
  (Qibao, Minhang): they took parcels from couriers at the gate and carried them door to door,
  about 10 km of shuttling a day -- Xinhua photo story via People's Daily Online, 12 Apr 2022.
  No city-wide count of volunteers was found: team sizes are an assumption (below).
- ~11,000 couriers for ~25 M people in mid-April -- Global News, Apr 2022.

JD's stated figures (Shanghai, 2022):

- basic food packs over 16 million; maternal and infant packs over 80,000; medicine and prevention
  packs over 100,000 -- JD vice-president at the city press conference, 10 Apr 2022 (EqualOcean).
- chronic-disease patients served online (JD Health) 37,000 requests by 9 Apr -- same.
- ~14,000 t moved in one week -- JD corporate blog.
- 2 temporary warehouses (Jinshan, Qingpu), set up in 9 days -- JD release.
- over 100 autonomous delivery vehicles; payload 200 kg, range 100 km per charge -- Retail Tech
  Innovation Hub, Apr 2022.
- Hong Kong (Feb 2022): RMB 100 million of anti-epidemic supplies via the Hong Kong Community
  Anti-Coronavirus Link -- Chinese news repost, 21 Feb 2022 (weakly sourced).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources
from typing import Final

__all__ = [
    "ASSUMPTIONS",
    "PUBLISHED",
    "Assumption",
    "DerivedRates",
    "DistrictFigure",
    "Figure",
    "derived_rates",
    "load_districts",
]


@dataclass(frozen=True)
class Figure:
    """A published aggregate figure and where it comes from."""

    name: str
    value: float
    source: str


@dataclass(frozen=True)
class Assumption:
    """A number the generator needs that no published figure backs."""

    name: str
    value: object
    rationale: str


# ---------------------------------------------------------------------------------------------
# Published figures (values as printed in the sources; "derived" = arithmetic on cited figures)
# ---------------------------------------------------------------------------------------------

POPULATION_2020: Final = 24_870_895
PERSONS_PER_HOUSEHOLD: Final = 2.32
SHARE_60_PLUS: Final = 0.234
SHARE_0_14: Final = 0.098
SHARE_80_PLUS_OF_60_PLUS: Final = 0.155
SENIORS_LIVING_ALONE: Final = 318_300
BIRTHS_2021: Final = 116_000
INFANTS_UNDER_2: Final = 244_000
PREGNANT_AT_ONCE: Final = 89_000
HYPERTENSION_PREVALENCE: Final = 0.234
HYPERTENSION_ON_MEDICATION: Final = 0.407
DIABETES_PREVALENCE: Final = 0.113
COMMUNITIES_SEALED: Final = 7_624
COMMUNITIES_CONTROLLED: Final = 2_460
COMMUNITIES_PRECAUTIONARY: Final = 7_565
COMMUNITIES_TOTAL: Final = 17_649
COURIERS_MID_APRIL: Final = 11_000
RESIDENTS_COMMITTEES_2019: Final = 4_463
QIBAO_TEAM_START: Final = 7
QIBAO_TEAM_MONTH_LATER: Final = 40
JD_FOOD_PACKS: Final = 16_000_000
JD_MATERNAL_INFANT_PACKS: Final = 80_000
JD_MEDICINE_PACKS: Final = 100_000
JD_CHRONIC_REQUESTS: Final = 37_000
JD_TONNES_PER_WEEK: Final = 14_000
ROBOTS_TOTAL: Final = 100
ROBOT_PAYLOAD_KG: Final = 200
ROBOT_RANGE_KM: Final = 100
HK_SUPPLIES_FEN: Final = 100_000_000 * 100

PUBLISHED: Final[tuple[Figure, ...]] = (
    Figure("population_2020", POPULATION_2020, "7th national census (citypopulation.de)"),
    Figure("persons_per_household", PERSONS_PER_HOUSEHOLD, "2020 census bulletin"),
    Figure("share_60_plus", SHARE_60_PLUS, "2020 census via China Daily"),
    Figure("share_0_14", SHARE_0_14, "2020 census"),
    Figure("share_80_plus_of_60_plus", SHARE_80_PLUS_OF_60_PLUS, "Shine Jul 2022 (Civil Affairs)"),
    Figure("seniors_living_alone", SENIORS_LIVING_ALONE, "Shine Jul 2022 (Civil Affairs)"),
    Figure("births_2021", BIRTHS_2021, "2021 Shanghai statistical communique"),
    Figure("infants_under_2", INFANTS_UNDER_2, "derived: births 2020 + 2021"),
    Figure("pregnant_at_once", PREGNANT_AT_ONCE, "derived: 116,000 x 40/52"),
    Figure("hypertension_prevalence", HYPERTENSION_PREVALENCE, "China Hypertension Survey 2018"),
    Figure("hypertension_on_medication", HYPERTENSION_ON_MEDICATION, "same"),
    Figure("diabetes_prevalence", DIABETES_PREVALENCE, "Cities Changing Diabetes estimate"),
    Figure("communities_sealed", COMMUNITIES_SEALED, "Xinhua 11 Apr 2022"),
    Figure("communities_controlled", COMMUNITIES_CONTROLLED, "Xinhua 11 Apr 2022"),
    Figure("communities_precautionary", COMMUNITIES_PRECAUTIONARY, "Xinhua 11 Apr 2022"),
    Figure("couriers_mid_april", COURIERS_MID_APRIL, "Global News Apr 2022"),
    Figure("residents_committees_2019", RESIDENTS_COMMITTEES_2019, "Civil Affairs Bureau tables"),
    Figure("qibao_team_start", QIBAO_TEAM_START, "Xinhua via People's Daily Online 12 Apr 2022"),
    Figure("qibao_team_month_later", QIBAO_TEAM_MONTH_LATER, "same"),
    Figure("jd_food_packs", JD_FOOD_PACKS, "JD at city press conference 10 Apr 2022"),
    Figure("jd_maternal_infant_packs", JD_MATERNAL_INFANT_PACKS, "same"),
    Figure("jd_medicine_packs", JD_MEDICINE_PACKS, "same"),
    Figure("jd_chronic_requests", JD_CHRONIC_REQUESTS, "same (JD Health, by 9 Apr)"),
    Figure("jd_tonnes_per_week", JD_TONNES_PER_WEEK, "JD corporate blog"),
    Figure("robots_total", ROBOTS_TOTAL, "Retail Tech Innovation Hub Apr 2022"),
    Figure("robot_payload_kg", ROBOT_PAYLOAD_KG, "same"),
    Figure("robot_range_km", ROBOT_RANGE_KM, "same"),
    Figure("hk_supplies_fen", HK_SUPPLIES_FEN, "news repost 21 Feb 2022 (weakly sourced)"),
)


# ---------------------------------------------------------------------------------------------
# Assumptions: every number below is NOT backed by a published figure.
# ---------------------------------------------------------------------------------------------

#: Share of households with 1, 2, 3, 4, 5, 6 members. Shaped like the 2020 national census
#: distribution but shifted to smaller households so that the mean is exactly the published 2.32.
HOUSEHOLD_SIZE_SHARES: Final[tuple[float, ...]] = (0.30, 0.32, 0.22, 0.10, 0.04, 0.02)

#: Community (zoned compound) residents vary lognormally around the district mean.
COMMUNITY_SIZE_LOGNORMAL_SIGMA: Final = 0.6

#: A district is modelled as a disc of its published area around its published centroid;
#: community gates are uniform in that disc. Centroids are taken as WGS-84 although the source
#: is likely GCJ-02 (offset of a few hundred metres).
DISTRICT_SHAPE: Final = "disc"

#: Lockdown status is drawn independently of the district (no per-district split was published).
LOCKDOWN_INDEPENDENT_OF_DISTRICT: Final = True

#: Share of people aged 15-17 (children not covered by the published 0-14 share), used to get
#: the adult (18+) share for adult prevalences.
SHARE_15_17: Final = 0.025

#: Share of diabetic adults who take medication (China, Li et al., BMJ 2020 reports ~33 %
#: treated; not a Shanghai figure).
DIABETES_ON_MEDICATION: Final = 0.33

#: Hypertension-on-medication and diabetes-on-medication are treated as independent when
#: combining them into "chronic illness on medication"; other chronic illnesses are ignored.
CHRONIC_CONDITIONS_INDEPENDENT: Final = True

#: Disability rate: China's second national sample survey on disability (2006), 6.34 %,
#: applied to Shanghai 2022 as an assumption.
DISABILITY_RATE: Final = 0.0634

#: The published 318,300 seniors living alone are written as single-person households whose
#: member is 80+ (the import format records 80+, not 60+), as the issue asks. This overstates
#: lone 80+ (true 60-79 lone seniors would have elderly_80 = 0).
ALONE_SENIORS_ARE_80_PLUS: Final = True

#: The other 80+ people live in households of 2+ members, at most 2 of them per household.
MAX_80_PLUS_PER_SHARED_HOUSEHOLD: Final = 2

#: Infants live with at least one older member (households of 2+); pregnant women live in
#: households of 2+ with a member who is neither an infant nor 80+ (at most one per household).
INFANTS_NEED_HOUSEHOLD_OF_2: Final = True

#: Households per residential building, and doors per floor, for synthetic addresses.
HOUSEHOLDS_PER_BUILDING: Final = 48
DOORS_PER_FLOOR: Final = 4

#: Synthetic phone numbers: '+86 170' followed by the 8-digit household number (obviously fake).
PHONE_PREFIX: Final = "+86 170"

#: Which statuses keep vehicles out. Sealed compounds admit only robots and volunteers on foot.
VEHICLES_BARRED_STATUSES: Final = ("sealed",)

#: How the published ~11,000 couriers of mid-April 2022 split over vehicle kinds (one courier
#: per vehicle): the split is assumed, the total is the published one. No factor multiplies it.
COURIERS_BY_KIND: Final[dict[str, int]] = {"truck": 600, "van": 2_400, "ebike": 8_000}
assert sum(COURIERS_BY_KIND.values()) == COURIERS_MID_APRIL

#: Fleet at scale 1.0 by kind: the published couriers by the split above, and the published
#: "over 100" autonomous vehicles (JD's) as robots.
FLEET_AT_FULL_SCALE: Final[dict[str, int]] = {**COURIERS_BY_KIND, "robot": ROBOTS_TOTAL}

#: Vehicle parameters: capacity_kg, capacity_m3, speed_kmh, range_km, shift start, shift end.
#: Robot payload and range are published (200 kg, 100 km); everything else is assumed.
VEHICLE_SPECS: Final[dict[str, tuple[int, int, int, int, str, str]]] = {
    "truck": (3_000, 16, 30, 400, "06:00", "18:00"),
    "van": (800, 5, 30, 250, "07:00", "19:00"),
    "ebike": (150, 1, 15, 60, "08:00", "20:00"),
    "robot": (ROBOT_PAYLOAD_KG, 2, 15, ROBOT_RANGE_KM, "06:00", "22:00"),
}

#: Carriers and their share of the fleet; only the first runs robots (as JD did).
CARRIERS: Final[tuple[tuple[str, str, str, float, bool], ...]] = (
    ("CAR-01", "Eastbound Logistics (synthetic)", "东行物流（虚构）", 0.5, True),
    ("CAR-02", "Huangpu Express (synthetic)", "黄浦快运（虚构）", 0.3, False),
    ("CAR-03", "Riverside Couriers (synthetic)", "江畔速递（虚构）", 0.2, False),
)

#: Warehouses: code, owner, district adcode, offset east/north of the centroid in km,
#: share of the total capacity, temporary. The two temporary ones mirror JD's Jinshan and
#: Qingpu sites (published); every location and share is assumed.
WAREHOUSE_PLAN: Final[tuple[tuple[str, str, str, float, float, float, bool], ...]] = (
    ("W01", "CAR-01", "310114", 2.0, -1.0, 0.16, False),  # Jiading
    ("W02", "CAR-01", "310115", -3.0, 4.0, 0.16, False),  # Pudong
    ("W03", "CAR-01", "310116", 1.0, 1.0, 0.08, True),  # Jinshan (temporary)
    ("W04", "CAR-01", "310118", 2.0, 0.5, 0.08, True),  # Qingpu (temporary)
    ("W05", "CAR-02", "310112", 0.5, 1.0, 0.14, False),  # Minhang
    ("W06", "CAR-02", "310113", 1.0, -2.0, 0.10, False),  # Baoshan
    ("W07", "CAR-03", "310117", 1.5, 1.5, 0.10, False),  # Songjiang
    ("W08", "CAR-03", "310107", 0.0, 0.0, 0.06, False),  # Putuo
    ("W09", "NGO-01", "310104", 0.5, -0.5, 0.12, False),  # Xuhui (NGO hub)
)

#: Total over all warehouses at scale 1.0. Daily outbound: JD's published ~14,000 t in one week
#: (~2,000 t/day) plus 50 % for the other carriers, which is also the order of the pledged 16 M
#: food kits (~10 kg) spread over 8 weeks. Stock capacity = STOCK_DAYS of outbound; volume from
#: an average density of relief goods of GOODS_DENSITY_KG_PER_M3.
TOTAL_DAILY_OUTBOUND_KG: Final = 3_000_000
STOCK_DAYS: Final = 5
GOODS_DENSITY_KG_PER_M3: Final = 250

#: Unit value of each catalog SKU in fen (2022 retail, rounded), used for declared pledge values.
SKU_VALUE_FEN: Final[dict[str, int]] = {
    "RICE-5KG": 3_500,
    "FLOUR-5KG": 3_000,
    "OIL-5L": 7_000,
    "PULSES-1KG": 1_200,
    "SALT-500G": 300,
    "FORMULA-800G": 25_000,
    "DIAPERS-50": 8_000,
    "MASK-50": 2_500,
    "TEST-KIT-20": 10_000,
    "MED-AMLODIPINE-30": 3_000,
    "MED-METFORMIN-60": 2_000,
    "KIT-FAMILY-FOOD": 20_000,
    "KIT-INFANT": 40_000,
    "KIT-MATERNITY": 30_000,
    "KIT-CHRONIC-MED": 10_000,
    "KIT-PROTECTION": 15_000,
}

#: Pledged quantity per SKU at scale 1.0, by programme. Kits follow JD's published pack counts
#: (food 16 M; maternal+infant 80,000 split by the infant:pregnant ratio; medicine 100,000);
#: loose items and protection goods are assumed (protection sized to the HK RMB 100 M gift).
PLEDGE_PLAN: Final[dict[str, dict[str, int]]] = {
    "food": {
        "KIT-FAMILY-FOOD": JD_FOOD_PACKS,
        "RICE-5KG": 1_000_000,
        "FLOUR-5KG": 400_000,
        "OIL-5L": 500_000,
        "PULSES-1KG": 300_000,
        "SALT-500G": 300_000,
    },
    "maternal-infant": {
        "KIT-INFANT": JD_MATERNAL_INFANT_PACKS * 244 // 333,
        "KIT-MATERNITY": JD_MATERNAL_INFANT_PACKS * 89 // 333,
        "FORMULA-800G": 240_000,
        "DIAPERS-50": 240_000,
    },
    "medicine": {
        "KIT-CHRONIC-MED": JD_MEDICINE_PACKS,
        "MED-AMLODIPINE-30": JD_CHRONIC_REQUESTS,
        "MED-METFORMIN-60": JD_CHRONIC_REQUESTS // 2,
    },
    "protection": {
        "KIT-PROTECTION": 400_000,
        "MASK-50": 800_000,
        "TEST-KIT-20": 300_000,
    },
}

#: Donors (fictional names): code, name, name_zh, country, and what each gives: SKU → weight,
#: its share of that SKU among the donors who give it (the weights of one SKU sum to 1). As in
#: 2022, grain and oil companies gave the rice, flour and oil (and the family food kits packed
#: from them); dairies, charities and online giving gave infant formula and the maternal-infant
#: kits; pharmacies and tech companies medicine. The HK donor mirrors the published Hong Kong
#: gift (protection goods). Which donor gave how much of what was not published: assumed.
DONORS: Final[tuple[tuple[str, str, str, str, dict[str, float]], ...]] = (
    ("DON-01", "Yangtze Retail Group (synthetic)", "长江零售集团（虚构）", "CN",
     {"PULSES-1KG": 0.6, "SALT-500G": 0.6}),
    ("DON-02", "Golden Grain Foods (synthetic)", "金穗食品（虚构）", "CN",
     {"KIT-FAMILY-FOOD": 0.6, "RICE-5KG": 0.6, "FLOUR-5KG": 0.7, "OIL-5L": 0.4}),
    ("DON-03", "Pearl Dairy (synthetic)", "明珠乳业（虚构）", "CN",
     {"KIT-INFANT": 0.5, "FORMULA-800G": 0.7}),
    ("DON-04", "Lotus Pharma (synthetic)", "莲花制药（虚构）", "CN",
     {"KIT-CHRONIC-MED": 0.6, "MED-AMLODIPINE-30": 0.7, "MED-METFORMIN-60": 1.0}),
    ("DON-05", "Harbour Community Link (synthetic)", "港湾社区联线（虚构）", "HK",
     {"KIT-PROTECTION": 0.7, "MASK-50": 0.6, "TEST-KIT-20": 0.5}),
    ("DON-06", "Bund Charity Foundation (synthetic)", "外滩慈善基金会（虚构）", "CN",
     {"KIT-INFANT": 0.3, "KIT-MATERNITY": 0.6, "DIAPERS-50": 0.5, "PULSES-1KG": 0.4}),
    ("DON-07", "Sunrise Tech (synthetic)", "旭日科技（虚构）", "CN",
     {"KIT-PROTECTION": 0.3, "MASK-50": 0.4, "TEST-KIT-20": 0.5, "KIT-CHRONIC-MED": 0.2}),
    ("DON-08", "Neighbours Online Giving (synthetic)", "邻里网络公益（虚构）", "CN",
     {"KIT-INFANT": 0.2, "KIT-MATERNITY": 0.4, "FORMULA-800G": 0.3, "DIAPERS-50": 0.5,
      "KIT-CHRONIC-MED": 0.2, "MED-AMLODIPINE-30": 0.3, "SALT-500G": 0.4}),
    ("DON-09", "Northeast Rice & Oil (synthetic)", "东北粮油（虚构）", "CN",
     {"KIT-FAMILY-FOOD": 0.4, "RICE-5KG": 0.4, "FLOUR-5KG": 0.3, "OIL-5L": 0.6}),
)  # fmt: skip
#: The grain and oil companies among the donors: the only ones to give rice, flour and oil.
GRAIN_COMPANIES: Final = ("DON-02", "DON-09")
GRAIN_SKUS: Final = ("KIT-FAMILY-FOOD", "RICE-5KG", "FLOUR-5KG", "OIL-5L")


def donor_shares(sku: str) -> dict[str, float]:
    """Each donor's share of ``sku`` (donor code → share; the shares sum to 1)."""
    return {code: gives[sku] for code, _n, _z, _c, gives in DONORS if sku in gives}


def donor_programs(code: str) -> tuple[str, ...]:
    """The programmes a donor pledges to: those of the SKUs it gives."""
    gives = next(d[4] for d in DONORS if d[0] == code)
    return tuple(p for p, skus in PLEDGE_PLAN.items() if any(s in gives for s in skus))


PLEDGES_PER_DONOR_PROGRAM: Final = (1, 4)  # inclusive range, drawn per donor and programme
PLEDGE_ARRIVAL_WINDOW: Final = ("2022-04-02", "2022-05-25")  # within the strict lockdown

#: The relief programmes pledges are made to (code, name, name_zh), run by the NGO: the keys
#: of PLEDGE_PLAN.
PROGRAMS: Final = (
    ("food", "Food for sealed households", "封控家庭食品保障"),
    ("maternal-infant", "Mothers and infants", "母婴保障"),
    ("medicine", "Medicines for chronic patients", "慢病患者用药保障"),
    ("protection", "Protective supplies", "防护物资"),
)

#: Cooperating organisations that are not donors or carriers.
NGO: Final = ("NGO-01", "Shanghai Relief Partners (synthetic)", "上海援助伙伴（虚构）", "CN")
OTHER_ORGS: Final[tuple[tuple[str, str, str, str, str], ...]] = (
    ("HP-01", "health_provider", "Online Clinic Network (synthetic)", "在线诊疗网络（虚构）", "CN"),
    ("GOV-01", "government", "Municipal Supply Office (synthetic)", "市保供办（虚构）", "CN"),
)

#: Residents' committees: the published 4,463 (2019) of the whole city; each manages
#: the compounds of one district, in compact patches (neighbouring compounds share a
#: committee). How compounds were split over committees was not published.
COMMITTEES_WITHIN_ONE_DISTRICT: Final = True

#: Volunteer teams (an ASSUMPTION: no city-wide count of volunteers was published). One team per
#: compound, one volunteer per VOLUNTEER_HOUSEHOLDS_PER_MEMBER households, at least
#: VOLUNTEER_TEAM_MIN members. The range 25-50 households per volunteer is read off the Qibao
#: team (7 residents at first, about 40 a month later) for a compound of one to two thousand
#: households; 35 is its middle.
VOLUNTEER_HOUSEHOLDS_PER_MEMBER: Final = 35
VOLUNTEER_TEAM_MIN: Final = 2
#: What one volunteer moves per trip with a trolley or hand cart (about three family food kits),
#: and the team's working hours (they often worked late into the evening).
VOLUNTEER_TROLLEY_KG: Final = 30
VOLUNTEER_SHIFT: Final = ("07:00", "21:00")

#: Where the simulated part of the city is centred: People's Square (Huangpu), WGS-84. At a
#: scale below 1 the city is the compounds nearest to it holding that share of the residents
#: (a contiguous part at real density, not a sparse sample of the whole city).
CITY_CENTRE: Final = (31.2304, 121.4737)  # lat, lon

#: Communities generated per random stream block (fixed, so output does not depend on memory
#: or chunk tuning; changing it changes every household).
COMMUNITIES_PER_BLOCK: Final = 128


ASSUMPTIONS: Final[tuple[Assumption, ...]] = (
    Assumption(
        "household_size_shares",
        HOUSEHOLD_SIZE_SHARES,
        "1..6 members; national-census shape shifted to the published mean 2.32",
    ),
    Assumption(
        "community_size_lognormal_sigma",
        COMMUNITY_SIZE_LOGNORMAL_SIGMA,
        "spread of residents per zoned community around the district mean",
    ),
    Assumption(
        "district_shape",
        DISTRICT_SHAPE,
        "district = disc of its area at its centroid; centroids taken as WGS-84",
    ),
    Assumption(
        "lockdown_independent_of_district",
        LOCKDOWN_INDEPENDENT_OF_DISTRICT,
        "no per-district split of the 11 Apr 2022 zoning was published",
    ),
    Assumption("share_15_17", SHARE_15_17, "to turn the published 0-14 share into an 18+ share"),
    Assumption(
        "diabetes_on_medication",
        DIABETES_ON_MEDICATION,
        "China-wide treatment rate (~33 %), not a Shanghai figure",
    ),
    Assumption(
        "chronic_conditions_independent",
        CHRONIC_CONDITIONS_INDEPENDENT,
        "hypertension and diabetes medication combined as independent events",
    ),
    Assumption(
        "disability_rate",
        DISABILITY_RATE,
        "China 2006 national sample survey on disability, applied to Shanghai",
    ),
    Assumption(
        "alone_seniors_are_80_plus",
        ALONE_SENIORS_ARE_80_PLUS,
        "318,300 lone seniors written as 1-person households with an 80+ member",
    ),
    Assumption(
        "max_80_plus_per_shared_household",
        MAX_80_PLUS_PER_SHARED_HOUSEHOLD,
        "other 80+ live in households of 2+, at most 2 per household",
    ),
    Assumption(
        "infants_need_household_of_2",
        INFANTS_NEED_HOUSEHOLD_OF_2,
        "infants and pregnant women only in households of 2+",
    ),
    Assumption("households_per_building", HOUSEHOLDS_PER_BUILDING, "synthetic addresses"),
    Assumption("doors_per_floor", DOORS_PER_FLOOR, "synthetic addresses"),
    Assumption("phone_prefix", PHONE_PREFIX, "fake numbers: prefix + household number"),
    Assumption(
        "vehicles_barred_statuses",
        VEHICLES_BARRED_STATUSES,
        "sealed compounds: robots and volunteers on foot only",
    ),
    Assumption(
        "couriers_by_kind",
        COURIERS_BY_KIND,
        "split of the published ~11,000 couriers over trucks, vans and e-bikes",
    ),
    Assumption(
        "fleet_at_full_scale",
        FLEET_AT_FULL_SCALE,
        "published ~11,000 couriers by the split above; robots = published 100; no factor",
    ),
    Assumption("vehicle_specs", VEHICLE_SPECS, "robot 200 kg / 100 km published; the rest assumed"),
    Assumption("carriers", CARRIERS, "three fictional carriers, fleet shares 50/30/20 %"),
    Assumption(
        "warehouse_plan",
        WAREHOUSE_PLAN,
        "locations and capacity shares assumed; 2 temporary sites as JD's",
    ),
    Assumption(
        "total_daily_outbound_kg",
        TOTAL_DAILY_OUTBOUND_KG,
        "JD ~2,000 t/day published, +50 % for other carriers",
    ),
    Assumption("stock_days", STOCK_DAYS, "warehouse capacity = days of outbound"),
    Assumption("goods_density_kg_per_m3", GOODS_DENSITY_KG_PER_M3, "to derive capacity_m3"),
    Assumption("sku_value_fen", SKU_VALUE_FEN, "2022 retail values, rounded"),
    Assumption(
        "pledge_plan",
        PLEDGE_PLAN,
        "kit counts from JD's published packs; loose and protection goods assumed",
    ),
    Assumption("donors", DONORS, "fictional donors; what each gives, and its share"),
    Assumption("pledges_per_donor_program", PLEDGES_PER_DONOR_PROGRAM, "inclusive range"),
    Assumption("pledge_arrival_window", PLEDGE_ARRIVAL_WINDOW, "inside the strict lockdown"),
    Assumption(
        "committees_within_one_district",
        COMMITTEES_WITHIN_ONE_DISTRICT,
        "the published 4,463 committees; compact patches of compounds within a district",
    ),
    Assumption(
        "volunteer_households_per_member",
        VOLUNTEER_HOUSEHOLDS_PER_MEMBER,
        "ASSUMPTION: 1 volunteer per 25-50 households, from the Qibao team of 7 -> 40",
    ),
    Assumption("volunteer_team_min", VOLUNTEER_TEAM_MIN, "a leader and one more"),
    Assumption("volunteer_trolley_kg", VOLUNTEER_TROLLEY_KG, "per volunteer and trip"),
    Assumption("volunteer_shift", VOLUNTEER_SHIFT, "the teams' working hours"),
    Assumption("communities_per_block", COMMUNITIES_PER_BLOCK, "random stream granularity"),
    Assumption("city_centre", CITY_CENTRE, "a scaled city grows from People's Square outward"),
)


# ---------------------------------------------------------------------------------------------
# Derived rates
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DerivedRates:
    """Per-person rates and the per-household draw probabilities calibrated from them."""

    infant_rate: float  # infants under 2 per person
    pregnant_rate: float  # pregnant women per person
    elderly_80_rate: float  # 80+ per person
    alone_80_rate: float  # 80+ living alone per person
    chronic_rate: float  # people on medication for a chronic illness, per person
    disabled_rate: float
    # draw probabilities, calibrated on HOUSEHOLD_SIZE_SHARES
    p_infant: float  # per member other than one adult, households of 2+
    p_pregnant: float  # per household of 2+
    p_alone_80: float  # per 1-person household
    p_shared_80: float  # per member slot (at most 2) in households of 2+
    p_chronic: float  # per non-infant member
    p_disabled: float  # per non-infant member


def derived_rates() -> DerivedRates:
    """Per-person rates from the published figures, and household draw probabilities."""
    shares = HOUSEHOLD_SIZE_SHARES
    sizes = range(1, len(shares) + 1)
    mean = sum(k * s for k, s in zip(sizes, shares, strict=True))
    share_1 = shares[0]
    share_2plus = 1.0 - share_1
    extra_members = sum((k - 1) * s for k, s in zip(sizes, shares, strict=True))
    slots_80 = sum(
        min(k, MAX_80_PLUS_PER_SHARED_HOUSEHOLD) * s
        for k, s in zip(sizes, shares, strict=True)
        if k >= 2
    )

    infant_rate = INFANTS_UNDER_2 / POPULATION_2020
    pregnant_rate = PREGNANT_AT_ONCE / POPULATION_2020
    elderly_80_rate = SHARE_60_PLUS * SHARE_80_PLUS_OF_60_PLUS
    alone_80_rate = SENIORS_LIVING_ALONE / POPULATION_2020
    adult_share = 1.0 - SHARE_0_14 - SHARE_15_17
    hypertension_med = HYPERTENSION_PREVALENCE * HYPERTENSION_ON_MEDICATION
    diabetes_med = DIABETES_PREVALENCE * DIABETES_ON_MEDICATION
    chronic_adult = 1.0 - (1.0 - hypertension_med) * (1.0 - diabetes_med)
    chronic_rate = adult_share * chronic_adult

    # per household expectations = per-person rate x mean household size
    return DerivedRates(
        infant_rate=infant_rate,
        pregnant_rate=pregnant_rate,
        elderly_80_rate=elderly_80_rate,
        alone_80_rate=alone_80_rate,
        chronic_rate=chronic_rate,
        disabled_rate=DISABILITY_RATE,
        p_infant=infant_rate * mean / extra_members,
        p_pregnant=pregnant_rate * mean / share_2plus,
        p_alone_80=alone_80_rate * mean / share_1,
        p_shared_80=(elderly_80_rate - alone_80_rate) * mean / slots_80,
        p_chronic=chronic_rate / (1.0 - infant_rate),
        p_disabled=DISABILITY_RATE / (1.0 - infant_rate),
    )


# ---------------------------------------------------------------------------------------------
# District table (package data; the package never reads ../shared at run time)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DistrictFigure:
    """One district's published figures."""

    code: str
    name: str
    name_zh: str
    population: int
    area_km2: float
    lat: float
    lon: float


CITIES: Final = {"shanghai": "shanghai_districts.csv"}


def load_districts(city: str = "shanghai") -> tuple[DistrictFigure, ...]:
    """The published district table of ``city`` from package data."""
    if city not in CITIES:
        raise ValueError(f"city: unknown city {city!r}; known: {', '.join(sorted(CITIES))}")
    text = resources.files("relieflink.scenario").joinpath("data", CITIES[city]).read_text("utf-8")
    rows = csv.DictReader(io.StringIO(text))
    return tuple(
        DistrictFigure(
            code=r["adcode"],
            name=r["name"],
            name_zh=r["name_zh"],
            population=int(r["population_2020"]),
            area_km2=float(r["area_km2"]),
            lat=float(r["centroid_lat"]),
            lon=float(r["centroid_lon"]),
        )
        for r in rows
    )
