"""Seedable synthetic customers, identifiers, noisy observations, events and CSV rows with truth."""

from __future__ import annotations

import gc
import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

__all__ = [
    "JUNK_EMAILS",
    "JUNK_PHONES",
    "SPLINK_COLUMNS",
    "GeneratorConfig",
    "SyntheticData",
    "generate",
    "household_pairs",
    "records_for_splink",
    "true_pairs",
]

#: Attribute columns the matching model compares (plus `unique_id`).
SPLINK_COLUMNS = (
    "first_name",
    "last_name",
    "date_of_birth",
    "street",
    "city",
    "postcode",
    "country",
)
#: Raw junk values that many unrelated people type into forms.
JUNK_EMAILS = ("test@test.com", "none@none.com")
JUNK_PHONES = ("0000000000",)
_JUNK_PHONE_KEYS = {"0000000000": "+10000000000"}

_NICKNAMES: dict[str, tuple[str, ...]] = {
    "Robert": ("Bob", "Rob", "Bobby"),
    "William": ("Bill", "Will", "Billy"),
    "James": ("Jim", "Jimmy", "Jamie"),
    "John": ("Johnny", "Jack"),
    "Michael": ("Mike", "Mick"),
    "Richard": ("Rick", "Dick", "Richie"),
    "Thomas": ("Tom", "Tommy"),
    "Christopher": ("Chris",),
    "Daniel": ("Dan", "Danny"),
    "Joseph": ("Joe", "Joey"),
    "Anthony": ("Tony",),
    "Alexander": ("Alex", "Sandy"),
    "Andrew": ("Andy", "Drew"),
    "Edward": ("Ed", "Ted", "Eddie"),
    "Benjamin": ("Ben",),
    "Nicholas": ("Nick",),
    "Matthew": ("Matt",),
    "Jonathan": ("Jon",),
    "Steven": ("Steve",),
    "Timothy": ("Tim",),
    "Charles": ("Charlie", "Chuck"),
    "Samuel": ("Sam",),
    "Patrick": ("Pat", "Paddy"),
    "Elizabeth": ("Liz", "Beth", "Betty", "Lizzie"),
    "Katherine": ("Kate", "Katie", "Kathy"),
    "Margaret": ("Maggie", "Peggy", "Meg"),
    "Jennifer": ("Jen", "Jenny"),
    "Patricia": ("Pat", "Trish"),
    "Susan": ("Sue", "Suzy"),
    "Deborah": ("Debbie", "Deb"),
    "Rebecca": ("Becky", "Becca"),
    "Victoria": ("Vicky", "Tori"),
    "Samantha": ("Sam",),
    "Jessica": ("Jess",),
    "Abigail": ("Abby",),
    "Catherine": ("Cathy", "Cat"),
    "Christine": ("Chris", "Chrissy"),
    "Alexandra": ("Alex", "Lexi"),
    "Eleanor": ("Ellie", "Nell"),
    "Josephine": ("Jo", "Josie"),
}
_MALE = (
    "Robert William James John Michael Richard Thomas Christopher Daniel Joseph Anthony "
    "Alexander Andrew Edward Benjamin Nicholas Matthew Jonathan Steven Timothy Charles Samuel "
    "Patrick David Paul Mark George Kevin Brian Ryan Gary Jacob Eric Stephen Larry Justin Scott "
    "Frank Gregory Raymond Henry Peter Oliver Harry Jack Noah Leo Oscar Arthur Freddie Theo "
    "Isaac Lucas Mohammed Omar Hugo Felix Adam Dylan Luke Aaron Connor Kieran Rhys Callum Owen "
    "Ethan Mason Logan Nathan Tyler Zachary Dominic Ivan Mateo Rafael Diego Carlos Luis Jorge "
    "Hiroshi Kenji Arjun Rohan Vikram Tariq Yusuf Emeka Kwame Tobias Anders Lars Sven Pierre "
    "Antoine Marco Giovanni Stefan Dmitri Nikolai Pavel Tomasz Piotr"
).split()
_FEMALE = (
    "Elizabeth Katherine Margaret Jennifer Patricia Susan Deborah Rebecca Victoria Samantha "
    "Jessica Abigail Catherine Christine Alexandra Eleanor Josephine Mary Linda Barbara Sarah "
    "Karen Nancy Lisa Betty Sandra Ashley Dorothy Kimberly Emily Donna Michelle Carol Amanda "
    "Melissa Laura Olivia Amelia Isla Ava Mia Ivy Lily Sophia Grace Freya Florence Poppy Evie "
    "Chloe Zoe Hannah Lucy Ella Ruby Megan Holly Phoebe Imogen Harriet Naomi Yasmin Aisha Fatima "
    "Priya Ananya Mei Yuki Sakura Ingrid Astrid Sofia Lucia Valentina Camila Gabriela Chiamaka "
    "Ngozi Amara Zara Leila Nadia Irina Katarzyna Agnieszka Magdalena Colette Juliette Giulia "
    "Francesca Siobhan Niamh Aoife Bronwen Carys"
).split()
_SURNAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill "
    "Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Evans Turner "
    "Phillips Parker Edwards Collins Stewart Morris Murphy Cook Rogers Morgan Peterson Cooper "
    "Reed Bailey Bell Gomez Kelly Howard Ward Cox Diaz Richardson Wood Watson Brooks Bennett Gray "
    "James Reyes Cruz Hughes Price Myers Long Foster Sanders Ross Morales Powell Sullivan Russell "
    "Ortiz Jenkins Gutierrez Perry Butler Barnes Fisher Henderson Coleman Simmons Patterson "
    "Jordan Reynolds Hamilton Graham Kim Gonzales Alexander Ramos Wallace Griffin West Cole Hayes "
    "Chavez Gibson Bryant Ellis Stevens Murray Ford Marshall Owens McDonald Harrison Ruiz Kennedy "
    "Wells Alvarez Woods Mendoza Castillo Olson Webb Washington Tucker Freeman Burns Henry Vasquez "
    "Snyder Simpson Crawford Jimenez Porter Mason Shaw Gordon Wagner Hunter Romero Hicks Dixon "
    "Hunt Palmer Robertson Black Holmes Stone Meyer Boyd Mills Warren Fox Rose Rice Moreno "
    "Schmidt Patel Ferguson Nichols Herrera Medina Ryan Fernandez Weaver Daniels Stephens Gardner "
    "Payne Kelley Dunn Pierce Arnold Tran Spencer Peters Hawkins Grant Hansen Castro Hoffman Hart "
    "Elliott Cunningham Knight Bradley Carroll Hudson Duncan Armstrong Berry Andrews Johnston Ray "
    "Lane Riley Carpenter Perkins Aguilar Silva Richards Willis Matthews Chapman Lawrence Garza "
    "Vargas Watkins Wheeler Larson Carlson Harper George Greene Burke Guzman Morrison Munoz "
    "Jacobs Obrien Lawson Franklin Lynch Bishop Carr Salazar Austin Mendez Gilbert Jensen "
    "Williamson Montgomery Harvey Oliver Howell Dean Hanson Weber Garrett Sims Burton Fuller "
    "Soto McCoy Welch Chen Schultz Walters Reid Fields Walsh Little Fowler Bowman Davidson May "
    "Day Schneider Newman Brewer Lucas Holland Wong Banks Santos Curtis Pearson Delgado Valdez "
    "Pena Rios Douglas Sandoval Barrett Hopkins Keller Guerrero Stanley Bates Alvarado Beck Ortega "
    "Wade Estrada Contreras Barnett Caldwell Santiago Lambert Powers Chambers Nunez Craig Leonard "
    "Lowe Rhodes Byrd Gregory Shelton Frazier Becker Maldonado Fleming Vega Sutton Cohen Jennings "
    "Parks McDaniel Watts Barker Norris Vaughn Vazquez Holt Schwartz Steele Benson Neal Dominguez "
    "Horton Terry Wolfe Hale Lyons Graves Haynes Miles Park Warner Padilla Bush Thornton McCarthy "
    "Mann Zimmerman Erickson Fletcher McKinney Page Dawson Joseph Marquez Reeves Klein Espinoza "
    "Baldwin Moran Love Robbins Higgins Ball Cortez Le Griffith Bowen Sharp Cummings Ramsey Hardy "
    "Swanson Barber Acosta Luna Chandler Blair Daniel Cross Simon Dennis Oconnor Quinn Gross "
    "Navarro Moss Fitzgerald Doyle McLaughlin Rojas Rodgers Stevenson Singh Yang Figueroa Harmon "
    "Newton Paul Manning Garner McGee Reese Francis Burgess Adkins Goodman Curry Brady Christensen "
    "Potter Walton Goodwin Mullins Molina Webster Fischer Campos Avila Sherman Todd Chang Blake "
    "Malone Wolf Hodges Juarez Gill Farmer Hines Gallagher Duran Hubbard Cannon Miranda Wang "
    "Saunders Tate Mack Hammond Carrillo Townsend Wise Ingram Barton Mejia Ayala Schroeder Hampton "
    "Rowe Parsons Frank Waters Strickland Osborne Maxwell Chan Deleon Norman Harrington Casey "
    "Patton Logan Bowers Mueller Glover Floyd Hartman Buchanan Cobb French Kramer McCormick Clarke "
    "Tyler Gibbs Moody Conner Sparks McGuire Leon Bauer Norton Pope Flynn Hogan Robles Salinas "
    "Yates Lindsey Lloyd Marsh McBride Owen Solis Pham Lang Pratt Lara Brock Ballard Trujillo "
    "Shaffer Drake Roman Aguirre Morton Stokes Lamb Pacheco Patrick Cochran Shepherd Cain Burnett "
    "Hess Listopad Kowalski Nowak Okafor Adeyemi Mensah Takahashi Tanaka Suzuki Ivanova Petrov"
).split()
_STREET_NAMES = (
    "High Church Station Victoria Green Manor Park Queens Kings Grange Mill Albert New School "
    "North South West East Chestnut Oak Elm Maple Cedar Willow Birch Ash Pine Holly Hawthorn "
    "Main Washington Lincoln Jefferson Madison Franklin Lake Hill Sunset River Spring Meadow "
    "Forest Highland Valley Ridge Cherry Walnut Poplar Laurel Jackson Adams Monroe Harrison "
    "Windsor Cambridge Oxford York Richmond Clarence Stanley Warwick Salisbury Devonshire "
    "Regent Brook Fairview Orchard Rosewood Linden Sycamore Primrose Bluebell Heather Juniper"
).split()
_STREET_TYPES_GB = (
    ("Street", "St"),
    ("Road", "Rd"),
    ("Avenue", "Ave"),
    ("Lane", "Ln"),
    ("Close", "Cl"),
    ("Drive", "Dr"),
    ("Gardens", "Gdns"),
    ("Crescent", "Cres"),
)
_STREET_TYPES_US = (
    ("Street", "St"),
    ("Avenue", "Ave"),
    ("Road", "Rd"),
    ("Drive", "Dr"),
    ("Boulevard", "Blvd"),
    ("Lane", "Ln"),
    ("Court", "Ct"),
    ("Place", "Pl"),
)
# city, postcode area letters (GB) or zip prefix (US), phone area code
_CITIES_GB = (
    ("London", "SW", "20"),
    ("London", "NW", "20"),
    ("London", "E", "20"),
    ("Manchester", "M", "161"),
    ("Birmingham", "B", "121"),
    ("Leeds", "LS", "113"),
    ("Glasgow", "G", "141"),
    ("Bristol", "BS", "117"),
    ("Edinburgh", "EH", "131"),
    ("Liverpool", "L", "151"),
    ("Sheffield", "S", "114"),
    ("Cardiff", "CF", "29"),
    ("Nottingham", "NG", "115"),
    ("Leicester", "LE", "116"),
    ("Newcastle", "NE", "191"),
    ("Brighton", "BN", "1273"),
    ("Oxford", "OX", "1865"),
    ("Cambridge", "CB", "1223"),
    ("York", "YO", "1904"),
    ("Bath", "BA", "1225"),
)
_CITIES_US = (
    ("New York", "100", "212"),
    ("Brooklyn", "112", "718"),
    ("Los Angeles", "900", "213"),
    ("Chicago", "606", "312"),
    ("Houston", "770", "713"),
    ("Phoenix", "850", "602"),
    ("Philadelphia", "191", "215"),
    ("San Antonio", "782", "210"),
    ("San Diego", "921", "619"),
    ("Dallas", "752", "214"),
    ("Austin", "787", "512"),
    ("Seattle", "981", "206"),
    ("Denver", "802", "303"),
    ("Boston", "021", "617"),
    ("Atlanta", "303", "404"),
    ("Miami", "331", "305"),
    ("Portland", "972", "503"),
    ("San Francisco", "941", "415"),
)
_EMAIL_DOMAINS_GB = (
    "gmail.com",
    "outlook.com",
    "hotmail.co.uk",
    "yahoo.co.uk",
    "icloud.com",
    "btinternet.com",
    "sky.com",
)
_EMAIL_DOMAINS_US = (
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "icloud.com",
    "aol.com",
    "hotmail.com",
    "comcast.net",
)
_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
_EPOCH = datetime(2024, 1, 1)
_LATEST_BIRTH = date(2008, 12, 31)


@dataclass(frozen=True)
class GeneratorConfig:
    """Rates of the generator; defaults give ~5.3 identifiers per customer."""

    household_share: float = 0.55  # customers living with other customers
    family_phone_rate: float = 0.35  # multi-person households sharing a landline
    second_email_rate: float = 0.2
    mobile_rate: float = 0.92
    whatsapp_rate: float = 0.55  # of customers with a mobile
    account_rate: float = 0.5
    device_rate: float = 0.3
    mean_cookies: float = 1.8
    junk_email_rate: float = 0.01  # customers who give a junk email somewhere
    junk_phone_rate: float = 0.005
    nickname_rate: float = 0.15
    typo_rate: float = 0.04
    events_per_customer: float = 2.0
    source_rows_per_customer: float = 0.5


@dataclass
class SyntheticData:
    """Everything one `generate` call produces, with its ground truth.

    `customers`: true profiles. `identifiers`: one row per identifier key with its owner(s).
    `observations`: attribute values seen with an identifier (noisy, many missing).
    `events`: what one channel presents in one Resolve call. `source_rows`: CSV ingest rows.
    `households`: who lives together and which family phone they share.
    """

    seed: int
    customers: list[dict[str, Any]]
    identifiers: list[dict[str, Any]]
    observations: list[dict[str, Any]]
    events: list[dict[str, Any]]
    source_rows: list[dict[str, Any]]
    households: list[dict[str, Any]]
    labels: dict[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.labels:
            self.labels = {i["key"]: i["customer_id"] for i in self.identifiers}


def _typo(rng: random.Random, s: str) -> str:
    if len(s) < 3:
        return s
    i = _randint(rng, 1, len(s) - 2)
    op = rng.random()
    if op < 0.3:
        return s[:i] + s[i + 1 :]
    if op < 0.6:
        return s[:i] + s[i + 1] + s[i] + s[i + 2 :]
    if op < 0.85:
        return s[:i] + _pick(rng, "aeioulnrst") + s[i + 1 :]
    return s[:i] + s[i] + s[i:]


def _dob_typo(rng: random.Random, dob: str) -> str:
    """A one-character slip in an ISO date, or a day/month swap; still a valid date if possible."""
    y, m, d = dob.split("-")
    r = rng.random()
    if r < 0.4 and int(d) <= 12 and d != m:
        return f"{y}-{d}-{m}"
    if r < 0.7:
        cand = f"{y}-{m}-{d[0]}{_pick(rng, '0123456789')}"
    else:
        cand = f"{y[:3]}{_pick(rng, '0123456789')}-{m}-{d}"
    try:
        date.fromisoformat(cand)
    except ValueError:
        return dob
    return cand


def _us_phone_raw(rng: random.Random, e164: str) -> str:
    a, b, c = e164[2:5], e164[5:8], e164[8:]
    r = rng.random()
    if r < 0.3:
        return f"({a}) {b}-{c}"
    if r < 0.5:
        return f"+1 {a} {b} {c}"
    if r < 0.65:
        return f"{a}-{b}-{c}"
    if r < 0.8:
        return f"{a}{b}{c}"
    if r < 0.9:
        return f"1-{a}-{b}-{c}"
    return e164


def _gb_phone_raw(rng: random.Random, e164: str) -> str:
    n = e164[3:]
    r = rng.random()
    if r < 0.4:
        return f"+44 {n[:4]} {n[4:]}"
    if r < 0.7:
        return e164
    return f"+44 {n[:3]} {n[3:6]} {n[6:]}"


def _phone_raw(rng: random.Random, e164: str) -> str:
    if e164 in _JUNK_PHONE_KEYS.values():
        return JUNK_PHONES[0]
    return _us_phone_raw(rng, e164) if e164.startswith("+1") else _gb_phone_raw(rng, e164)


def _email_raw(rng: random.Random, email: str) -> str:
    r = rng.random()
    if r < 0.75:
        return email
    local, _, domain = email.partition("@")
    if r < 0.85:
        return f"{local.title()}@{domain.title()}"
    if r < 0.93:
        return f" {email.upper()} "
    return f"{email} "


class _Gen:
    """One generation run; holds the RNG and the uniqueness sets."""

    def __init__(self, n_customers: int, seed: int, cfg: GeneratorConfig) -> None:
        self.n = n_customers
        self.rng = random.Random(seed)
        self.cfg = cfg
        self.seen_emails: set[str] = set()
        self.seen_phones: set[str] = set()
        self.customers: list[dict[str, Any]] = []
        self.identifiers: dict[str, dict[str, Any]] = {}
        self.observations: list[dict[str, Any]] = []
        self.households: list[dict[str, Any]] = []
        # Zipf-ish surname weights make term frequencies matter.
        self.surname_cum = _cum([1.0 / (i + 1) ** 0.8 for i in range(len(_SURNAMES))])
        self.streets_gb = _street_pool(self.rng, _CITIES_GB, _STREET_TYPES_GB, gb=True)
        self.streets_us = _street_pool(self.rng, _CITIES_US, _STREET_TYPES_US, gb=False)

    # -- people -------------------------------------------------------------------------
    def surname(self) -> str:
        return self.rng.choices(_SURNAMES, cum_weights=self.surname_cum)[0]

    def first_name(self, female: bool, avoid: list[str]) -> str:
        pool = _FEMALE if female else _MALE
        for _ in range(20):
            name = _pick(self.rng, pool)
            if all(name[:2] != a[:2] for a in avoid):
                return name
        return name

    def dob(self, lo_age: int, hi_age: int) -> date:
        return date(2024, 1, 1) - timedelta(days=_randint(self.rng, lo_age * 365, hi_age * 365))

    def phone(self, country: str, area: str, mobile: bool) -> str:
        rng = self.rng
        while True:
            if country == "US":
                e164 = f"+1{area}{_randint(rng, 2, 9)}{_randint(rng, 0, 9)}{_randint(rng, 2, 9)}"
                e164 += f"{int(rng.random() * (10000)):04d}"
            elif mobile:
                e164 = f"+447{_randint(rng, 4, 9)}{int(rng.random() * (10**8)):08d}"
            else:
                e164 = f"+44{area}{rng.randrange(10 ** (10 - len(area))):0{10 - len(area)}d}"
            if e164 not in self.seen_phones:
                self.seen_phones.add(e164)
                return e164

    def email(self, first: str, last: str, country: str) -> str:
        rng = self.rng
        domains = _EMAIL_DOMAINS_GB if country == "GB" else _EMAIL_DOMAINS_US
        f, la = first.lower(), last.lower()
        style = rng.random()
        if style < 0.4:
            local = f"{f}.{la}"
        elif style < 0.6:
            local = f"{f}{la}{_randint(rng, 1, 99)}"
        elif style < 0.8:
            local = f"{f[0]}{la}{_randint(rng, 1, 999)}"
        else:
            local = f"{f}_{_randint(rng, 1950, 2010)}"
        email = f"{local}@{_pick(rng, domains)}"
        while email in self.seen_emails:
            email = f"{local}{_randint(rng, 1, 9999)}@{_pick(rng, domains)}"
        self.seen_emails.add(email)
        return email

    def make_households(self) -> None:
        rng, cfg = self.rng, self.cfg
        idx = 0
        hh = 0
        while idx < self.n:
            size = 1
            if rng.random() < cfg.household_share:
                size = rng.choices((2, 3, 4, 5), weights=(45, 25, 20, 10))[0]
            size = min(size, self.n - idx)
            country = "GB" if rng.random() < 0.6 else "US"
            streets = self.streets_gb if country == "GB" else self.streets_us
            city, street, postcode, area = _pick(rng, streets)
            number = _randint(rng, 1, 250)
            street_full = f"{number} {street[0]} {street[1][0]}"
            street_abbr = f"{number} {street[0]} {street[1][1]}"
            last = self.surname()
            household_id = f"h{hh:07d}"
            hh += 1
            members: list[dict[str, Any]] = []
            names: list[str] = []
            for k in range(size):
                female = rng.random() < 0.5
                if k < 2:
                    born = self.dob(25, 80) if k == 0 else None
                    if k == 1:
                        base = date.fromisoformat(members[0]["date_of_birth"])
                        born = base + timedelta(days=_randint(rng, -3000, 3000))
                        female = not members[0]["female"] if rng.random() < 0.9 else female
                    member_last = last if (k == 0 or rng.random() < 0.85) else self.surname()
                else:
                    base = date.fromisoformat(members[0]["date_of_birth"])
                    if rng.random() < 0.05 and k > 2:  # twins share a birth date
                        born = date.fromisoformat(members[-1]["date_of_birth"])
                    else:
                        born = base + timedelta(days=_randint(rng, 20 * 365, 40 * 365))
                        if born > _LATEST_BIRTH:
                            born = _LATEST_BIRTH - timedelta(days=_randint(rng, 0, 12 * 365))
                    member_last = last
                first = self.first_name(female, names)
                names.append(first)
                cid = f"c{idx:07d}"
                idx += 1
                members.append(
                    {
                        "customer_id": cid,
                        "household_id": household_id,
                        "female": female,
                        "first_name": first,
                        "last_name": member_last,
                        "date_of_birth": born.isoformat(),
                        "street": street_full,
                        "street_abbr": street_abbr,
                        "city": city,
                        "postcode": postcode,
                        "country": country,
                        "area": area,
                        "identifiers": [],
                    }
                )
            family_phone = None
            if size > 1 and rng.random() < cfg.family_phone_rate:
                family_phone = self.phone(country, area, mobile=False)
            self.households.append(
                {
                    "household_id": household_id,
                    "members": [m["customer_id"] for m in members],
                    "family_phone": f"phone:{family_phone}" if family_phone else None,
                }
            )
            self.customers.extend(members)
            if family_phone:
                for m in members:
                    self.add_identifier(m, "phone", family_phone, "landline")

    # -- identifiers and observations -----------------------------------------------------
    def add_identifier(self, person: dict[str, Any], type_: str, value: str, channel: str) -> str:
        key = f"{type_}:{value}"
        ident = self.identifiers.get(key)
        if ident is None:
            ident = {"key": key, "type": type_, "value": value, "customers": []}
            self.identifiers[key] = ident
        if person["customer_id"] not in ident["customers"]:
            ident["customers"].append(person["customer_id"])
            person["identifiers"].append(key)
        n_obs = 1 + (self.rng.random() < 0.3 and type_ in ("email", "phone", "landline"))
        for _ in range(n_obs):
            self.observe(person, key, value, type_, channel)
        return key

    def observe(self, person: dict[str, Any], key: str, value: str, type_: str, channel: str) -> None:
        """One noisy sighting of `person`'s attributes with identifier `key` via `channel`."""
        rng, cfg = self.rng, self.cfg
        # presence probabilities: names, dob, address
        p_name, p_dob, p_addr = _PRESENCE[channel]
        obs: dict[str, Any] = {
            "identifier": key,
            "raw_value": _raw_identifier(rng, type_, value),
            "channel": channel,
            "observed_at": _timestamp(rng),
            "first_name": None,
            "last_name": None,
            "date_of_birth": None,
            "street": None,
            "city": None,
            "postcode": None,
            "country": None,
        }
        if rng.random() < p_name:
            first = person["first_name"]
            nick = _NICKNAMES.get(first)
            if nick and rng.random() < (0.4 if channel == "whatsapp" else cfg.nickname_rate):
                first = _pick(rng, nick)
            elif rng.random() < cfg.typo_rate:
                first = _typo(rng, first)
            obs["first_name"] = first.upper() if rng.random() < 0.03 else first
            if channel != "whatsapp" or rng.random() < 0.5:
                last = person["last_name"]
                if rng.random() < cfg.typo_rate:
                    last = _typo(rng, last)
                obs["last_name"] = last.upper() if rng.random() < 0.03 else last
        if rng.random() < p_dob:
            dob = person["date_of_birth"]
            obs["date_of_birth"] = _dob_typo(rng, dob) if rng.random() < cfg.typo_rate else dob
        if rng.random() < p_addr:
            r = rng.random()
            street = person["street_abbr"] if r < 0.25 else person["street"]
            if r > 0.97:
                street = _typo(rng, street)
            obs["street"] = street
            obs["city"] = person["city"] if rng.random() < 0.95 else None
            pc = person["postcode"] if rng.random() < 0.95 else None
            if pc and rng.random() < 0.1:
                pc = pc.lower().replace(" ", "")
            obs["postcode"] = pc
            obs["country"] = person["country"]
        self.observations.append(obs)

    def make_identifiers(self) -> None:
        rng, cfg = self.rng, self.cfg
        acc = 0
        for p in self.customers:
            country, area = p["country"], p["area"]
            if rng.random() < 0.95:
                self.add_identifier(p, "email", self.email(p["first_name"], p["last_name"], country), "email")
            if rng.random() < cfg.second_email_rate:
                self.add_identifier(p, "email", self.email(p["first_name"], p["last_name"], country), "email")
            if rng.random() < cfg.junk_email_rate:
                self.add_identifier(p, "email", _pick(rng, JUNK_EMAILS), "web_form")
            if rng.random() < cfg.junk_phone_rate:
                self.add_identifier(p, "phone", _JUNK_PHONE_KEYS[JUNK_PHONES[0]], "web_form")
            if rng.random() < cfg.mobile_rate:
                mobile = self.phone(country, area, mobile=True)
                p["mobile"] = mobile
                self.add_identifier(p, "phone", mobile, "phone")
                if rng.random() < cfg.whatsapp_rate:
                    self.add_identifier(p, "whatsapp", mobile, "whatsapp")
            n_cookies = _poisson(rng, cfg.mean_cookies)
            for _ in range(n_cookies):
                self.add_identifier(p, "web_cookie", f"{rng.getrandbits(64):016x}", "web")
            if rng.random() < cfg.account_rate:
                acc += 1
                self.add_identifier(p, "account_id", f"acc{acc:08d}", "account")
            if rng.random() < cfg.device_rate:
                self.add_identifier(p, "device_id", f"{rng.getrandbits(96):024x}", "app")

    # -- events and CSV rows --------------------------------------------------------------
    def make_events_and_rows(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rng, cfg = self.rng, self.cfg
        events: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        seq = {"crm": 0, "orders": 0}
        for p in self.customers:
            by_type: dict[str, list[str]] = {}
            for key in p["identifiers"]:
                t, _, v = key.partition(":")
                by_type.setdefault(t, []).append(v)
            for _ in range(_poisson(rng, cfg.events_per_customer)):
                ev = self.event(p, by_type)
                if ev:
                    ev["event_id"] = f"ev{len(events):08d}"
                    events.append(ev)
            if rng.random() < cfg.source_rows_per_customer:
                source = "crm" if rng.random() < 0.6 else "orders"
                seq[source] += 1
                rid = f"{source[0].upper()}{seq[source]:07d}"
                emails, phones = by_type.get("email", []), by_type.get("phone", [])
                row = {
                    "source": source,
                    "record_id": rid,
                    "email": _email_raw(rng, _pick(rng, emails)) if emails else None,
                    "phone": _phone_raw(rng, _pick(rng, phones)) if phones and rng.random() < 0.8 else None,
                }
                key = self.add_identifier(p, "source_record", f"{source}/{rid}", source)
                obs = self.observations[-1]
                row.update({c: obs[c] for c in SPLINK_COLUMNS})
                row["customer_id"] = p["customer_id"]
                row["identifier"] = key
                rows.append(row)
        return events, rows

    def event(self, p: dict[str, Any], by_type: dict[str, list[str]]) -> dict[str, Any] | None:
        rng = self.rng
        kind = rng.choices(
            ("web_form", "sms", "whatsapp", "email", "login", "app", "voice"),
            weights=(30, 15, 15, 15, 10, 5, 10),
        )[0]
        ids: list[dict[str, str]] = []
        attrs: dict[str, Any] = {}
        verified = False

        def pick(t: str) -> str | None:
            vals = by_type.get(t)
            return _pick(rng, vals) if vals else None

        if kind == "web_form":
            for t, p_use in (("web_cookie", 1.0), ("email", 0.9), ("phone", 0.6)):
                v = pick(t)
                if v and rng.random() < p_use:
                    ids.append({"type": t, "value": _raw_identifier(rng, t, v)})
            attrs = {"first_name": p["first_name"], "last_name": p["last_name"]}
        elif kind in ("sms", "voice"):
            v = pick("phone")
            if v:
                ids.append({"type": "phone", "value": _phone_raw(rng, v)})
        elif kind == "whatsapp":
            v = pick("whatsapp")
            if v:
                ids.append({"type": "whatsapp", "value": v})
                if _NICKNAMES.get(p["first_name"]) and rng.random() < 0.4:
                    attrs = {"first_name": _pick(rng, _NICKNAMES[p["first_name"]])}
                else:
                    attrs = {"first_name": p["first_name"]}
        elif kind == "email":
            v = pick("email")
            if v:
                ids.append({"type": "email", "value": _email_raw(rng, v)})
        elif kind == "login":
            a, c = pick("account_id"), pick("web_cookie")
            if a:
                ids.append({"type": "account_id", "value": a})
                verified = True
                if c:
                    ids.append({"type": "web_cookie", "value": c})
        else:
            d, a = pick("device_id"), pick("account_id")
            if d:
                ids.append({"type": "device_id", "value": d})
                if a:
                    ids.append({"type": "account_id", "value": a})
                    verified = True
        if not ids:
            return None
        return {
            "channel": kind,
            "occurred_at": _timestamp(rng),
            "identifiers": ids,
            "attributes": attrs,
            "verified": verified,
            "customer_id": p["customer_id"],
        }


# channel: (p names, p dob, p address)
_PRESENCE: dict[str, tuple[float, float, float]] = {
    "email": (0.95, 0.5, 0.6),
    "phone": (0.8, 0.3, 0.5),
    "landline": (0.9, 0.3, 0.8),
    "whatsapp": (0.85, 0.05, 0.05),
    "web": (0.4, 0.15, 0.3),
    "web_form": (0.9, 0.3, 0.5),
    "account": (1.0, 0.8, 0.9),
    "app": (0.6, 0.4, 0.3),
    "crm": (0.98, 0.6, 0.9),
    "orders": (0.95, 0.1, 0.95),
}


_DAYS = [(_EPOCH + timedelta(days=d)).date().isoformat() for d in range(366)]
_MINUTES = [f"{m // 60:02d}:{m % 60:02d}:00" for m in range(1440)]


def _timestamp(rng: random.Random) -> str:
    return f"{_DAYS[int(rng.random() * 366)]}T{_MINUTES[int(rng.random() * 1440)]}"


def _raw_identifier(rng: random.Random, type_: str, value: str) -> str:
    if type_ == "email":
        return _email_raw(rng, value)
    if type_ == "phone":
        return _phone_raw(rng, value)
    return value


def _pick(rng: random.Random, seq: Any) -> Any:
    return seq[int(rng.random() * len(seq))]


def _randint(rng: random.Random, lo: int, hi: int) -> int:
    return lo + int(rng.random() * (hi - lo + 1))


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth; means here are small.
    limit, k, p = pow(2.718281828459045, -mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _cum(weights: list[float]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


def _street_pool(
    rng: random.Random,
    cities: tuple[tuple[str, str, str], ...],
    types: tuple[tuple[str, str], ...],
    gb: bool,
) -> list[tuple[str, tuple[str, tuple[str, str]], str, str]]:
    """(city, (street name, (type, abbreviation)), postcode, phone area) for ~120 streets a city."""
    pool = []
    for city, prefix, area in cities:
        used: set[tuple[str, str]] = set()
        for _ in range(120):
            name, typ = _pick(rng, _STREET_NAMES), _pick(rng, types)
            if (name, typ[0]) in used:
                continue
            used.add((name, typ[0]))
            if gb:
                pc = f"{prefix}{_randint(rng, 1, 20)} {_randint(rng, 1, 9)}{_pick(rng, _LETTERS)}"
                pc += _pick(rng, _LETTERS)
            else:
                pc = f"{prefix}{_randint(rng, 0, 99):02d}"
            pool.append((city, (name, typ), pc, area))
    return pool


def generate(n_customers: int, seed: int, config: GeneratorConfig | None = None) -> SyntheticData:
    """Generates `n_customers` customers and everything they leave behind, deterministically.

    Args:
        n_customers: number of true customers (~5.3 identifiers each with default rates).
        seed: the only source of randomness; the same seed gives the same data.
        config: generator rates; `GeneratorConfig()` when omitted.

    Returns:
        SyntheticData with ground truth (`labels`: identifier key → customer id, or None for an
        identifier shared by several customers such as a family phone or `test@test.com`).
    """
    if n_customers < 0:
        raise ValueError("n_customers must be >= 0")
    g = _Gen(n_customers, seed, config or GeneratorConfig())
    with _no_gc():
        g.make_households()
        g.make_identifiers()
        events, rows = g.make_events_and_rows()
    identifiers = list(g.identifiers.values())
    for ident in identifiers:
        owners = ident["customers"]
        ident["customer_id"] = owners[0] if len(owners) == 1 else None
        ident["generic"] = len(owners) > 1
    customers = []
    for c in g.customers:
        c = dict(c)
        for k in ("female", "street_abbr", "area"):
            c.pop(k, None)
        customers.append(c)
    return SyntheticData(
        seed=seed,
        customers=customers,
        identifiers=identifiers,
        observations=g.observations,
        events=events,
        source_rows=rows,
        households=g.households,
    )


def _clean(column: str, value: str | None) -> str | None:
    """Light standardisation that ingest would do: trim, case-fold, one space."""
    if value is None:
        return None
    v = " ".join(value.split())
    if not v:
        return None
    if column in ("postcode", "country"):
        v = v.upper()
        if column == "postcode" and " " not in v and len(v) > 5 and not v.isdigit():
            v = f"{v[:-3]} {v[-3:]}"
        return v
    if column == "date_of_birth":
        return v
    return v.lower()


@contextmanager
def _no_gc() -> Iterator[None]:
    """Millions of small dicts make the cyclic GC dominate run time; none of them cycle."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def records_for_splink(data: SyntheticData) -> list[dict[str, Any]]:
    """One record per identifier that carries attributes, ready for Splink and the scorer.

    Each attribute is the most frequent cleaned value observed with the identifier (ties: the
    first seen). Identifiers never observed with any attribute are left out. Besides
    `unique_id` and `SPLINK_COLUMNS`, each record has `cluster` (true customer id, or None
    for a shared identifier) and `household`; the model does not use them.

    Returns:
        A list of dicts, ordered by first observation.
    """
    with _no_gc():
        return _records_for_splink(data)


def _records_for_splink(data: SyntheticData) -> list[dict[str, Any]]:
    by_key: dict[str, list[dict[str, Any]]] = {}
    for obs in data.observations:
        by_key.setdefault(obs["identifier"], []).append(obs)
    cust_household = {c["customer_id"]: c["household_id"] for c in data.customers}
    memo: dict[str, dict[str | None, str | None]] = {c: {None: None} for c in SPLINK_COLUMNS}

    def clean(col: str, value: str | None) -> str | None:
        m = memo[col]
        if value in m:
            return m[value]
        m[value] = out_value = _clean(col, value)
        return out_value

    out: list[dict[str, Any]] = []
    for key, obs_list in by_key.items():
        rec: dict[str, Any] = {"unique_id": key}
        any_value = False
        for col in SPLINK_COLUMNS:
            if len(obs_list) == 1:
                v = clean(col, obs_list[0][col])
            else:
                vals = [clean(col, o[col]) for o in obs_list]
                vals = [x for x in vals if x is not None]
                v = Counter(vals).most_common(1)[0][0] if vals else None
            rec[col] = v
            any_value = any_value or v is not None
        if not any_value:
            continue
        cluster = data.labels.get(key)
        rec["cluster"] = cluster
        rec["household"] = cust_household.get(cluster) if cluster else None
        out.append(rec)
    return out


def true_pairs(records: list[dict[str, Any]], max_pairs: int, seed: int) -> list[tuple[str, str]]:
    """Up to `max_pairs` pairs of records of the same true customer (training labels).

    These stand in for the `verified`/`equivalent` links a live graph would supply.
    """
    rng = random.Random(seed)
    by_cluster: dict[str, list[str]] = {}
    for r in records:
        if r.get("cluster"):
            by_cluster.setdefault(r["cluster"], []).append(r["unique_id"])
    pairs = []
    for ids in by_cluster.values():
        for i in range(len(ids)):
            for j in range(i + 1, len(ids)):
                pairs.append((ids[i], ids[j]))
    rng.shuffle(pairs)
    return pairs[:max_pairs]


def household_pairs(records: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Pairs of records of different members of one household: the hardest negatives."""
    by_household: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if r.get("household"):
            by_household.setdefault(r["household"], []).append(r)
    pairs = []
    for members in by_household.values():
        for i in range(len(members)):
            for j in range(i + 1, len(members)):
                if members[i]["cluster"] != members[j]["cluster"]:
                    pairs.append((members[i], members[j]))
    return pairs
