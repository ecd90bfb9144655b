"""The emulator's chat events through the official parsers (events.md §8).

One scenario (conftest.py) drives chat with the official Python SDKs while a loopback receiver
holds an Event Grid schema subscription naming every chat type and a CloudEvents 1.0 subscription
without a filter. Each test judges the recorded deliveries: the official parsers
(azure-eventgrid's EventGridEvent and SystemEventNames, azure-core's CloudEvent), the envelope and
headers (§4, §5), the counts and recipients per operation (§2), the subjects (§1), and `data`
against the swagger, field by field (§3). The same bodies also go through @azure/eventgrid (js/).
"""

import copy
import json
from collections import Counter

import pytest
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridEvent, SystemEventNames

from conftest import CE_PATH, CT, EG_PATH, expected_counts
from swagger_check import parse_rfc3339

SYSTEM_EVENT_TYPES = {member.value for member in SystemEventNames}
# Preview names Python still lists; the service no longer sends them (events.md §1).
PREVIEW_TYPES = {CT + "ChatMemberAddedToThreadWithUser", CT + "ChatMemberRemovedFromThreadWithUser"}


def eg_events(s):
    return s.events(EG_PATH)


def ce_events(s):
    return s.events(CE_PATH)


def by_type(events, key):
    grouped = {}
    for e in events:
        grouped.setdefault(e[key], []).append(e)
    return grouped


def test_subscriptions_passed_the_real_validation_handshakes(scenario):
    validations = [
        r
        for r in scenario.records
        if r.method == "POST" and r.header("aeg-event-type") == "SubscriptionValidation"
    ]
    assert [r.path for r in validations] == [EG_PATH]
    [event] = json.loads(validations[0].body)
    parsed = EventGridEvent.from_json(json.dumps(event))
    assert parsed.event_type == SystemEventNames.EventGridSubscriptionValidationEventName
    assert parsed.data["validationCode"]
    options = [r for r in scenario.records if r.method == "OPTIONS"]
    assert [r.path for r in options] == [CE_PATH]
    assert options[0].header("webhook-request-origin") == "eventgrid.azure.net"


def test_every_event_grid_event_parses_with_azure_eventgrid(scenario):
    for record in scenario.notifications(EG_PATH):
        body = json.loads(record.body)
        assert isinstance(body, list), "an Event Grid schema body is always an array (§4)"
        assert len(body) == 1, "maxEventsPerBatch 1"
        for event in body:
            parsed = EventGridEvent.from_json(json.dumps(event))
            assert parsed.event_type in SYSTEM_EVENT_TYPES, parsed.event_type
            assert parsed.event_type not in PREVIEW_TYPES
            assert parsed.topic == scenario.arm_resource_id
            assert parsed.id and parsed.subject
            assert parsed.data_version == "1.0" and event["dataVersion"] == "1.0"
            assert parsed.metadata_version == "1" and event["metadataVersion"] == "1"
            assert parsed.event_time.tzinfo is not None
            assert parse_rfc3339(event["eventTime"]) is not None, event["eventTime"]
            assert parsed.data == event["data"]


def test_event_grid_deliveries_carry_the_aeg_headers(scenario):
    records = scenario.notifications(EG_PATH)
    assert records
    for record in records:
        assert record.header("aeg-event-type") == "Notification"
        assert record.header("aeg-subscription-name") == scenario.eg_name.upper()
        assert record.header("aeg-delivery-count") == "0"  # the receiver never failed one
        assert record.header("aeg-data-version") == "1.0"
        assert record.header("aeg-metadata-version") == "1"
        assert record.header("content-type").lower().startswith("application/json")


def test_every_cloud_event_parses_with_azure_core(scenario):
    records = scenario.notifications(CE_PATH)
    assert records
    for record in records:
        assert record.header("aeg-event-type") == "Notification"
        assert record.header("aeg-subscription-name") == scenario.ce_name.upper()
        assert record.header("aeg-delivery-count") == "0"
        assert record.header("aeg-data-version") == "1.0"
        body = json.loads(record.body)
        content_type = record.header("content-type").lower()
        if isinstance(body, list):
            assert content_type.startswith("application/cloudevents-batch+json"), content_type
            assert 1 <= len(body) <= 5
        else:
            assert content_type.startswith("application/cloudevents+json"), content_type
        for event in body if isinstance(body, list) else [body]:
            parsed = CloudEvent.from_dict(event)
            assert event["specversion"] == "1.0" and parsed.specversion == "1.0"
            assert parsed.type in SYSTEM_EVENT_TYPES and parsed.type not in PREVIEW_TYPES
            assert parsed.source == scenario.arm_resource_id
            assert parsed.id and parsed.subject
            assert parsed.time is not None and parsed.time.tzinfo is not None
            assert parse_rfc3339(event["time"]) is not None, event["time"]
            assert parsed.datacontenttype == "application/json"
            assert parsed.data == event["data"]


def test_counts_per_type_follow_events_md_section_2(scenario):
    eg, ce = eg_events(scenario), ce_events(scenario)
    assert dict(Counter(e["eventType"] for e in eg)) == expected_counts(with_typing=True)
    # The CloudEvents subscription names no types, so it gets no typing indicator (§10).
    assert dict(Counter(e["type"] for e in ce)) == expected_counts(with_typing=False)
    assert len({e["id"] for e in eg}) == len(eg), "an event delivered twice"
    assert len({e["id"] for e in ce}) == len(ce), "an event delivered twice"


def test_every_event_is_of_the_scenarios_thread(scenario):
    for event in eg_events(scenario) + ce_events(scenario):
        assert event["data"]["threadId"] == scenario.thread_id


def test_user_level_events_reach_each_recipient_once(scenario):
    u = {name: user.raw_id for name, user in scenario.users.items()}
    recipients = {
        "ChatThreadCreatedWithUser": ["bob", "carol"],
        "ChatMessageReceived": ["bob", "carol"],
        "ChatMessageEdited": ["bob", "carol"],
        "ChatMessageDeleted": ["bob", "carol"],
        "ChatThreadPropertiesUpdatedPerUser": ["bob", "carol"],
        "ChatParticipantAddedToThreadWithUser": ["bob", "carol", "dave"],
        "ChatParticipantRemovedFromThreadWithUser": ["bob", "carol", "dave"],
        "ChatThreadWithUserDeleted": ["bob", "dave"],
    }
    for events, key in ((eg_events(scenario), "eventType"), (ce_events(scenario), "type")):
        grouped = by_type(events, key)
        for suffix, names in recipients.items():
            got = sorted(e["data"]["recipientCommunicationIdentifier"]["rawId"] for e in grouped[CT + suffix])
            assert got == sorted(u[n] for n in names), suffix


def test_subjects_follow_events_md_section_1(scenario):
    t = scenario.thread_id
    u = {name: user.raw_id for name, user in scenario.users.items()}
    a = u["alice"]
    thread_level = {
        "ChatThreadCreated": f"thread/{t}/createdBy/{a}",
        "ChatMessageReceivedInThread": f"thread/{t}/sender/{a}",
        "ChatMessageEditedInThread": f"thread/{t}/sender/{a}",
        "ChatMessageDeletedInThread": f"thread/{t}/sender/{a}",
        "ChatThreadPropertiesUpdated": f"thread/{t}/editedBy/{a}",
        "ChatThreadParticipantAdded": f"thread/{t}/participantadded/{u['dave']}",
        "ChatThreadParticipantRemoved": f"thread/{t}/participantremoved/{u['carol']}",
        "ChatThreadDeleted": f"thread/{t}/deletedBy/{a}",
        "ChatTypingIndicatorReceivedInThread": f"thread/{t}/sender/{a}",
    }
    user_level = {
        "ChatThreadCreatedWithUser": f"thread/{t}/createdBy/{a}/recipient/",
        "ChatMessageReceived": f"thread/{t}/sender/{a}/recipient/",
        "ChatMessageEdited": f"thread/{t}/sender/{a}/recipient/",
        "ChatMessageDeleted": f"thread/{t}/sender/{a}/recipient/",
        "ChatThreadPropertiesUpdatedPerUser": f"thread/{t}/editedBy/{a}/recipient/",
        "ChatParticipantAddedToThreadWithUser": f"thread/{t}/participantAdded/{u['dave']}/recipient/",
        "ChatParticipantRemovedFromThreadWithUser": f"thread/{t}/participantRemoved/{u['carol']}/recipient/",
        "ChatThreadWithUserDeleted": f"thread/{t}/deletedBy/{a}/recipient/",
    }
    for events, key in ((eg_events(scenario), "eventType"), (ce_events(scenario), "type")):
        for event in events:
            suffix = event[key][len(CT):]
            if suffix in thread_level:
                assert event["subject"] == thread_level[suffix], suffix
            else:
                recipient = event["data"]["recipientCommunicationIdentifier"]["rawId"]
                assert event["subject"] == user_level[suffix] + recipient, suffix


def test_data_of_every_event_matches_its_swagger_model(scenario, swagger):
    checked = Counter()
    for events, key in ((eg_events(scenario), "eventType"), (ce_events(scenario), "type")):
        for event in events:
            errors = swagger.check_event_data(event[key], event["data"])
            assert not errors, f"{event[key]} {event['id']}:\n  " + "\n  ".join(errors)
            checked[event[key]] += 1
    assert set(checked) == set(expected_counts(with_typing=True))


def test_swagger_checker_rejects_what_the_swagger_forbids(scenario, swagger):
    """The checker is no rubber stamp: broken copies of a delivered event fail it (events.md §8)."""
    [received] = [e for e in eg_events(scenario) if e["eventType"] == CT + "ChatMessageReceivedInThread"]
    [created] = [e for e in eg_events(scenario) if e["eventType"] == CT + "ChatThreadCreated"]
    assert not swagger.check_event_data(received["eventType"], received["data"])

    def broken(event, change):
        data = copy.deepcopy(event["data"])
        change(data)
        return swagger.check_event_data(event["eventType"], data)

    assert broken(received, lambda d: d.update(version=str(d["version"])))  # a string int64
    assert broken(received, lambda d: d.update(version=True))
    assert broken(received, lambda d: d.pop("messageBody"))  # required
    assert broken(received, lambda d: d.pop("transactionId"))  # required by the in-thread base
    assert broken(received, lambda d: d.update(composeTime="2021-02-19 00:25:58"))  # no zone, no T
    assert broken(received, lambda d: d.update(composeTime="2021-02-30T00:25:58Z"))  # no such day
    assert broken(received, lambda d: d["senderCommunicationIdentifier"].pop("communicationUser"))
    assert broken(received, lambda d: d.update(metadata={"k": 1}))  # string -> string map
    assert broken(created, lambda d: d["participants"][0].pop("participantCommunicationIdentifier"))
    assert broken(created, lambda d: d.update(participants={}))


def test_data_values_match_what_the_test_did(scenario):
    s = scenario
    u = {name: user.raw_id for name, user in s.users.items()}
    for events, key in ((eg_events(s), "eventType"), (ce_events(s), "type")):
        grouped = by_type(events, key)

        def each(suffix):
            assert grouped[CT + suffix], suffix
            return [e["data"] for e in grouped[CT + suffix]]

        for event in events:
            assert event["data"]["transactionId"], "transactionId is never empty (§3.2)"
        for suffix in ("ChatThreadCreated", "ChatThreadCreatedWithUser"):
            for d in each(suffix):
                assert d["createdByCommunicationIdentifier"]["rawId"] == u["alice"]
                assert d["properties"] == {"topic": s.topic}
                assert sorted(p["participantCommunicationIdentifier"]["rawId"] for p in d["participants"]) == sorted(
                    [u["alice"], u["bob"], u["carol"]]
                )
                names = {p["participantCommunicationIdentifier"]["rawId"]: p.get("displayName") for p in d["participants"]}
                assert names == {u["alice"]: "Alice", u["bob"]: "Bob", u["carol"]: "Carol"}
                assert parse_rfc3339(d["createTime"]) is not None
        for suffix, body, version in (
            ("ChatMessageReceivedInThread", s.message_body, s.sent_version),
            ("ChatMessageReceived", s.message_body, s.sent_version),
            ("ChatMessageEditedInThread", s.edited_body, s.edited_version),
            ("ChatMessageEdited", s.edited_body, s.edited_version),
        ):
            for d in each(suffix):
                assert d["messageId"] == s.message_id
                assert d["messageBody"] == body
                assert d["version"] == version, f"{suffix}: the message's version as the chat API returns it"
                assert d["senderCommunicationIdentifier"]["rawId"] == u["alice"]
                assert d["senderDisplayName"] == "Alice"
                assert d["type"] == "Text"
        for suffix in ("ChatMessageEditedInThread", "ChatMessageEdited"):
            for d in each(suffix):
                assert parse_rfc3339(d["editTime"]) >= parse_rfc3339(d["composeTime"])
        for suffix in ("ChatMessageDeletedInThread", "ChatMessageDeleted"):
            for d in each(suffix):
                assert d["messageId"] == s.message_id
                assert parse_rfc3339(d["deleteTime"]) >= parse_rfc3339(d["composeTime"])
        for suffix in ("ChatThreadPropertiesUpdated", "ChatThreadPropertiesUpdatedPerUser"):
            for d in each(suffix):
                assert d["editedByCommunicationIdentifier"]["rawId"] == u["alice"]
                assert d["properties"] == {"topic": s.new_topic}
                assert isinstance(d["metadata"], dict)  # required on the thread-level model
        for suffix in ("ChatThreadParticipantAdded", "ChatParticipantAddedToThreadWithUser"):
            for d in each(suffix):
                assert d["addedByCommunicationIdentifier"]["rawId"] == u["alice"]
                assert d["participantAdded"]["participantCommunicationIdentifier"]["rawId"] == u["dave"]
                assert d["participantAdded"]["displayName"] == "Dave"
        for suffix in ("ChatThreadParticipantRemoved", "ChatParticipantRemovedFromThreadWithUser"):
            for d in each(suffix):
                assert d["removedByCommunicationIdentifier"]["rawId"] == u["alice"]
                assert d["participantRemoved"]["participantCommunicationIdentifier"]["rawId"] == u["carol"]
        for suffix in ("ChatThreadDeleted", "ChatThreadWithUserDeleted"):
            for d in each(suffix):
                assert d["deletedByCommunicationIdentifier"]["rawId"] == u["alice"]
    [typing] = [e["data"] for e in eg_events(s) if e["eventType"] == CT + "ChatTypingIndicatorReceivedInThread"]
    assert typing["senderCommunicationIdentifier"]["rawId"] == u["alice"]
    assert (typing["messageId"], typing["type"], typing["messageBody"]) == ("0", "Text", "")


def test_both_schemas_carry_the_same_events(scenario):
    """One event, one id, the same data, in every subscription and schema (§4, §10)."""
    eg = {e["id"]: e for e in eg_events(scenario) if e["eventType"] != CT + "ChatTypingIndicatorReceivedInThread"}
    ce = {e["id"]: e for e in ce_events(scenario)}
    assert set(eg) == set(ce)
    for event_id, event in eg.items():
        other = ce[event_id]
        assert (other["type"], other["subject"], other["data"]) == (
            event["eventType"],
            event["subject"],
            event["data"],
        )
        assert parse_rfc3339(other["time"]) == parse_rfc3339(event["eventTime"])

