"""The flat filter a selection becomes when it can lead with an indexed field (services/neo/selections.py)."""
from services.neo.schema import NEO_TYPES
from services.neo.selections import flat_query, readable_pipeline
from services.neo.store import LIVE
from shared.identity import Identity

SIGNAL = NEO_TYPES["analogsignal"]


def test_a_parent_link_leads_then_labels_then_attributes_then_the_rest():
    clauses = [({"sampling_rate": {"$gte": 1}}, {"name": "V1"}, {"labels": 7}, {"segment": {"$in": [3]}})]
    query = flat_query(SIGNAL, [(list(clauses[0]), [])])
    assert list(query) == ["segment", "labels", "name", "sampling_rate", *LIVE]
    assert query["segment"] == {"$in": [3]} and query["labels"] == 7


def test_what_cannot_be_one_flat_filter_is_left_to_the_combined_query():
    assert flat_query(SIGNAL, [([{"labels": 7}], []), ([{"labels": 8}], [])]) is None  # OR of querysets
    assert flat_query(SIGNAL, [([{"labels": 7}], [{"name": "V1"}])]) is None  # an exclude
    assert flat_query(SIGNAL, [([{"labels": 7}, {"labels": {"$in": [8]}}], [])]) is None  # one field twice
    assert flat_query(SIGNAL, [([{"$or": [{"name": "a"}, {"name": "b"}]}], [])]) is None
    assert flat_query(SIGNAL, [([{"sampling_rate": 20000.0}], [])]) is None  # no indexed field to lead
    assert flat_query(SIGNAL, [([], [])]) is None



def test_the_permission_filter_follows_the_flat_filter_in_one_aggregation():
    query = flat_query(SIGNAL, [([{"labels": 7}, {"name": "V1"}], [])])
    friend = Identity(user_id=5, username="ada", befriended_by=frozenset({9, 3}))
    pipeline = readable_pipeline(friend, query)
    assert pipeline[0] == {"$match": query}  # flat and first: the stand-in plans its index from it
    assert pipeline[1] == {"$match": {"$or": [
        {"owner": 5}, {"readers": 5}, {"safety_level": 1}, {"safety_level": 2, "owner": {"$in": [3, 9]}}]}}
    assert pipeline[2:] == [{"$project": {"_id": 1}}, {"$sort": {"_id": 1}}]
    assert readable_pipeline(Identity(), query)[1] == {"$match": {"$or": [{"safety_level": 1}]}}
