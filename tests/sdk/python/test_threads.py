"""Thread lifecycle with the sync ChatClient / ChatThreadClient.

References: api-contract.md §2 (ops + status codes), §2.1 (repeatability,
creator is a participant, system messages on create), §5 (thread delete);
sdk-clients.md §3.3 (official e2e checklist: same id for the same idempotency
token, results_per_page=1 pages, fresh user -> exactly 1 thread, delete twice).
"""

import uuid
import pytest
from azure.core.exceptions import ResourceNotFoundError

from sdk_helpers import THREAD_ID_RE, as_aware, collect_pages, utcnow


def _ids(participants):
    return {p.identifier.raw_id for p in participants}


def test_create_thread_with_participants(make_person):
    alice, bob, carol = make_person(), make_person(), make_person()
    now = utcnow()

    result = alice.chat.create_chat_thread(
        "Lunch plans",
        thread_participants=[
            alice.participant("Alice", share_history_time=now),
            bob.participant("Bob", share_history_time=now),
            carol.participant("Carol", share_history_time=now),
        ],
    )

    assert not result.errors  # no invalidParticipants
    thread = result.chat_thread
    assert THREAD_ID_RE.match(thread.id), thread.id
    assert thread.topic == "Lunch plans"
    assert thread.created_by.raw_id == alice.raw_id
    assert abs((as_aware(thread.created_on) - utcnow()).total_seconds()) < 60

    participants = list(alice.thread(thread.id).list_participants())
    assert _ids(participants) == {alice.raw_id, bob.raw_id, carol.raw_id}
    names = {p.identifier.raw_id: p.display_name for p in participants}
    assert names == {alice.raw_id: "Alice", bob.raw_id: "Bob", carol.raw_id: "Carol"}

    # Every participant reaches the thread.
    for person in (bob, carol):
        assert person.thread(thread.id).get_properties().id == thread.id


def test_create_thread_without_participants(make_person):
    alice = make_person()
    result = alice.chat.create_chat_thread("Just me")
    assert result.chat_thread is not None
    assert not result.errors
    assert THREAD_ID_RE.match(result.chat_thread.id)


def test_creator_is_a_participant_even_when_not_listed(make_person):
    alice, bob = make_person(), make_person()
    result = alice.chat.create_chat_thread(
        "Creator not listed", thread_participants=[bob.participant("Bob")]
    )
    thread_id = result.chat_thread.id
    participants = list(alice.thread(thread_id).list_participants())
    assert _ids(participants) == {alice.raw_id, bob.raw_id}


def test_create_thread_is_idempotent_on_repeatability_token(make_person):
    alice, bob = make_person(), make_person()
    token = str(uuid.uuid4())
    participants = [bob.participant("Bob")]

    first = alice.chat.create_chat_thread(
        "Idempotent", thread_participants=participants, idempotency_token=token
    )
    second = alice.chat.create_chat_thread(
        "Idempotent", thread_participants=participants, idempotency_token=token
    )
    assert first.chat_thread.id == second.chat_thread.id
    assert second.chat_thread.topic == "Idempotent"

    other = alice.chat.create_chat_thread("Idempotent", thread_participants=participants)
    assert other.chat_thread.id != first.chat_thread.id

    listed = {t.id for t in alice.chat.list_chat_threads()}
    assert listed == {first.chat_thread.id, other.chat_thread.id}


def test_get_thread_client_and_properties(make_person):
    alice = make_person()
    created = alice.chat.create_chat_thread("Properties").chat_thread
    thread_client = alice.chat.get_chat_thread_client(created.id)
    assert thread_client.thread_id == created.id

    props = thread_client.get_properties()
    assert props.id == created.id
    assert props.topic == "Properties"
    assert props.created_by.raw_id == alice.raw_id
    assert abs((as_aware(props.created_on) - as_aware(created.created_on)).total_seconds()) < 1


def test_update_topic(make_person):
    alice, bob = make_person(), make_person()
    thread_id = alice.chat.create_chat_thread(
        "Old topic", thread_participants=[bob.participant("Bob")]
    ).chat_thread.id
    thread = alice.thread(thread_id)

    thread.update_topic(topic="New topic")

    assert thread.get_properties().topic == "New topic"
    assert bob.thread(thread_id).get_properties().topic == "New topic"
    # Changing the topic posts a topicUpdated system message.
    topics = [m.content.topic for m in thread.list_messages() if m.type == "topicUpdated"]
    assert "New topic" in topics
    assert "Old topic" in topics


def test_list_chat_threads_pages(make_person):
    alice, bob = make_person(), make_person()
    created = [
        alice.chat.create_chat_thread(f"Thread {i}").chat_thread.id for i in range(3)
    ]
    shared = alice.chat.create_chat_thread(
        "Shared", thread_participants=[bob.participant("Bob")]
    ).chat_thread.id

    pages, items = collect_pages(alice.chat.list_chat_threads(results_per_page=1), 1)
    ids = [t.id for t in items]
    assert sorted(ids) == sorted(created + [shared])  # each exactly once
    assert len(pages) >= 4
    topics = {t.id: t.topic for t in items}
    assert topics[shared] == "Shared"

    # Only threads the caller belongs to.
    assert [t.id for t in bob.chat.list_chat_threads()] == [shared]


def test_list_chat_threads_fresh_user_single_thread(make_person):
    alice = make_person()
    thread_id = alice.chat.create_chat_thread("Only one").chat_thread.id
    _, items = collect_pages(alice.chat.list_chat_threads(results_per_page=1), 1)
    assert [t.id for t in items] == [thread_id]


def test_delete_chat_thread_twice(make_person):
    alice = make_person()
    thread_id = alice.chat.create_chat_thread("To delete").chat_thread.id
    thread = alice.thread(thread_id)
    assert thread.get_properties().id == thread_id

    alice.chat.delete_chat_thread(thread_id)
    alice.chat.delete_chat_thread(thread_id)  # idempotent: 204 again

    with pytest.raises(ResourceNotFoundError) as ex:
        thread.get_properties()
    assert ex.value.status_code == 404

    # Deleted threads stay in the creator's list, marked with deletedOn
    # (recordings: ios UtilRecordings/listThreads.json, android canListChatThreadsWithMaxPage).
    listed = {t.id: t for t in alice.chat.list_chat_threads()}
    assert thread_id in listed
    assert listed[thread_id].deleted_on is not None
