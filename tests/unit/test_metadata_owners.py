"""Who owns a property or a value, and who may take them away from a section (no database)."""
from __future__ import annotations

import pytest

from services.metadata.owners import property_owner, value_owner
from services.metadata.properties import check_may_take_away
from shared.errors import Forbidden
from shared.identity import Identity

ALICE = Identity(user_id=1, username="alice")  # owns the section
BOB = Identity(user_id=2, username="bob")  # a collaborator (share level 2)


def prop(*entries, **owner) -> dict:
    """A property of alice's section_7; `owner` gives it an owner of its own."""
    return {"_id": 3, "section": 7, "owner": ALICE.user_id, "author": ALICE.username, "values": list(entries), **owner}


def value(value_id: int, who: Identity | None = None) -> dict:
    entry = {"id": value_id, "value": "x"}
    if who is not None:
        entry.update(owner=who.user_id, owner_name=who.username)
    return entry


BOBS = {"property_owner": BOB.user_id, "property_owner_name": BOB.username}


def test_a_property_stored_before_owners_belongs_to_its_sections_owner_and_so_do_its_values():
    doc = prop(value(5))
    assert property_owner(doc) == (1, "alice") and value_owner(doc, doc["values"][0]) == (1, "alice")
    bobs = prop(value(5), value(6, ALICE), **BOBS)
    assert property_owner(bobs) == (2, "bob")
    assert [value_owner(bobs, e) for e in bobs["values"]] == [(2, "bob"), (1, "alice")]


def test_the_sections_owner_may_take_anything_away():
    doc = prop(value(5, BOB), **BOBS)
    for verb in ("delete", "move"):
        check_may_take_away(doc, ALICE, verb=verb)
    check_may_take_away(doc, ALICE, verb="remove", entries=doc["values"])


@pytest.mark.parametrize("verb", ["delete", "move"])
def test_a_collaborator_may_not_delete_or_move_the_owners_property(verb):
    doc = prop(value(5, ALICE))
    with pytest.raises(Forbidden) as refused:
        check_may_take_away(doc, BOB, verb=verb)
    assert refused.value.http_status == 403 and refused.value.details == {"owner": "alice"}
    assert f"may {verb} it" in refused.value.message


def test_a_collaborator_may_not_remove_the_owners_values_but_their_own():
    doc = prop(value(5, ALICE), value(6, BOB), value(7))
    check_may_take_away(doc, BOB, verb="remove", entries=[doc["values"][1]])
    for entry in (doc["values"][0], doc["values"][2]):
        with pytest.raises(Forbidden) as refused:
            check_may_take_away(doc, BOB, verb="remove", entries=[entry])
        assert refused.value.details == {"owners": ["alice"], "values": [f"value_{entry['id']}"]}
    check_may_take_away(doc, BOB, verb="remove", entries=[])  # removing nothing is no removal


def test_a_collaborators_own_property_goes_only_with_nothing_of_others_in_it():
    mine = prop(value(5, BOB), value(6), **BOBS)  # value 6: no owner recorded, so the property's (bob)
    check_may_take_away(mine, BOB, verb="delete")
    check_may_take_away(mine, BOB, verb="move")
    holding = prop(value(5, BOB), value(6, ALICE), **BOBS)
    with pytest.raises(Forbidden) as refused:
        check_may_take_away(holding, BOB, verb="move")
    assert refused.value.details == {"owners": ["alice"], "values": ["value_6"]}
    stranger = Identity(user_id=9, username="carol")
    with pytest.raises(Forbidden):
        check_may_take_away(mine, stranger, verb="delete")
