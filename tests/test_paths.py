"""The one-way rule in bottleneck paths: an observed link walked from its claimant towards what it
claimed counts as probable; every other step counts with its kind."""

from __future__ import annotations

from collections.abc import Iterable

from identity_graph.model import Link, LinkKind
from identity_graph.paths import bottleneck, claimed_from, step_kind, steps, widest_paths

VER, EQU, OBS, PRO = LinkKind.VERIFIED, LinkKind.EQUIVALENT, LinkKind.OBSERVED, LinkKind.PROBABLE
COOKIE, PHONE, WA, EMAIL = "web_cookie:c", "phone:+15550001111", "whatsapp:+15550001111", "email:m@x.io"


def graph(links: list[Link]):
    def links_of(keys: Iterable[str]) -> list[Link]:
        keys = set(keys)
        return [lk for lk in links if lk.a in keys or lk.b in keys]

    return links_of


def reach(source: str, links: list[Link], generic: Iterable[str] = ()) -> dict[str, LinkKind]:
    flagged = set(generic)
    paths = widest_paths(source, graph(links), flagged.__contains__)
    return {k: bottleneck(p, source) for k, p in paths.items()}


def test_an_observed_step_is_one_way() -> None:
    typed = Link(COOKIE, PHONE, OBS, claimant=COOKIE)  # the web visitor typed the phone
    assert step_kind(typed, COOKIE) is PRO  # from the claimant: a claim proves nothing
    assert step_kind(typed, PHONE) is OBS  # to the claimant: the phone's holder sees the typist
    assert claimed_from(typed, COOKIE) and not claimed_from(typed, PHONE)
    for kind in (VER, EQU, PRO, LinkKind.POSSIBLE):  # the rule is about observed links only
        lk = Link(COOKIE, PHONE, kind, claimant=COOKIE)
        assert step_kind(lk, COOKIE) is kind and step_kind(lk, PHONE) is kind


def test_links_without_a_claimant_count_as_claimed_by_both_ends() -> None:
    """Links written before claimants were kept (migrated: claimant empty) are the safe reading:
    probable in both directions. A claimant that is neither end is read the same way."""
    for legacy in (Link(COOKIE, PHONE, OBS), Link(COOKIE, PHONE, OBS, claimant="source_record:crm/1")):
        assert step_kind(legacy, COOKIE) is PRO and step_kind(legacy, PHONE) is PRO
    assert reach(PHONE, [Link(COOKIE, PHONE, OBS)])[COOKIE] is PRO


def test_the_refrigerator_story_reaches_back_but_not_forward() -> None:
    links = [Link(COOKIE, PHONE, OBS, claimant=COOKIE), Link(PHONE, WA, EQU)]
    assert reach(WA, links) == {WA: VER, PHONE: EQU, COOKIE: OBS}  # WhatsApp opens the web chat
    assert reach(COOKIE, links) == {COOKIE: VER, PHONE: PRO, WA: PRO}  # the web chat opens nothing


def test_the_attack_direction_is_probable_and_a_stronger_route_still_wins() -> None:
    attacker = "phone:+15559999999"
    links = [Link(COOKIE, EMAIL, OBS, claimant=COOKIE), Link(attacker, EMAIL, OBS, claimant=attacker)]
    got = reach(attacker, links)
    assert got[EMAIL] is PRO and got[COOKIE] is PRO
    assert reach(EMAIL, links)[attacker] is OBS  # the email's holder sees what the attacker wrote
    # A claim in both directions (each typed the other) is two links: each end reaches the other.
    both = [Link(COOKIE, PHONE, OBS, claimant=COOKIE), Link(COOKIE, PHONE, OBS, claimant=PHONE)]
    assert reach(COOKIE, both)[PHONE] is OBS and reach(PHONE, both)[COOKIE] is OBS
    # A path is chosen per direction: the claimed shortcut loses to a longer verified route.
    routed = [Link(COOKIE, PHONE, OBS, claimant=COOKIE), Link(COOKIE, "account_id:u", VER),
              Link("account_id:u", PHONE, VER)]
    paths = widest_paths(COOKIE, graph(routed), lambda k: False)
    assert len(paths[PHONE]) == 2 and bottleneck(paths[PHONE], COOKIE) is VER
    assert steps(paths[PHONE], COOKIE) == [VER, VER]


def test_steps_follow_the_walk() -> None:
    path = [Link(WA, PHONE, EQU), Link(PHONE, COOKIE, OBS, claimant=COOKIE)]
    assert steps(path, WA) == [EQU, OBS]
    assert steps(path[::-1], COOKIE) == [PRO, EQU]
    assert bottleneck([], COOKIE) is VER


def test_a_generic_identifier_ends_a_path_but_never_carries_one() -> None:
    family = PHONE
    links = [Link(COOKIE, family, OBS, claimant=family), Link(family, EMAIL, OBS, claimant=family)]
    got = reach(COOKIE, links, generic=[family])
    assert got[family] is OBS and EMAIL not in got
