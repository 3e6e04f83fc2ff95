"""The people every test module meets.

Alice owns team Acme. Adam is an Acme admin, Bob an Acme member, Vera an Acme viewer.
Charlie owns team Globex and must never see anything of Acme's (nor Acme of his).
Dave is in no team at all.
"""

from dataclasses import dataclass

from apps.accounts.models import Role, Team
from tests.factories import TeamFactory, UserFactory, member


@dataclass
class World:
    acme: Team
    globex: Team
    alice: object
    adam: object
    bob: object
    vera: object
    charlie: object
    dave: object

    def by_role(self, role: str):
        return {Role.OWNER: self.alice, Role.ADMIN: self.adam, Role.MEMBER: self.bob, Role.VIEWER: self.vera}[role]


def build_world() -> World:
    acme = TeamFactory(slug="acme", name="Acme")
    globex = TeamFactory(slug="globex", name="Globex")
    return World(
        acme=acme,
        globex=globex,
        alice=member(acme, "alice", Role.OWNER),
        adam=member(acme, "adam", Role.ADMIN),
        bob=member(acme, "bob", Role.MEMBER),
        vera=member(acme, "vera", Role.VIEWER),
        charlie=member(globex, "charlie", Role.OWNER),
        dave=UserFactory(username="dave"),
    )
