"""Participants: add, list (paged, skip), remove, share_history_time.

References: api-contract.md §2 ops 11-13 (add 201, remove 204, list paged with
maxPageSize/skip), §2.3 (removed users "can't send or receive new messages"),
§3 ChatParticipant.shareHistoryTime ("Time from which the chat history is
shared with the participant"); design.md decision 8; sdk-clients.md §3.3
(official tests: add -> no failures; results_per_page=1, skip=1 totals).
"""

import time

import pytest
from azure.communication.chat import ChatMessageType
from azure.core.exceptions import HttpResponseError

from sdk_helpers import EPOCH, as_aware, collect_pages, utcnow


def _ids(participants):
    return {p.identifier.raw_id for p in participants}


def test_add_participants(make_person):
    alice, bob, carol = make_person(), make_person(), make_person()
    thread_id = alice.chat.create_chat_thread("Add").chat_thread.id
    thread = alice.thread(thread_id)

    bob_shares_from = utcnow()
    failures = thread.add_participants(
        [bob.participant("Bob", share_history_time=bob_shares_from), carol.participant("Carol")]
    )
    assert failures == []

    participants = list(thread.list_participants())
    assert _ids(participants) == {alice.raw_id, bob.raw_id, carol.raw_id}
    names = {p.identifier.raw_id: p.display_name for p in participants}
    assert names[bob.raw_id] == "Bob"
    assert names[carol.raw_id] == "Carol"
    # shareHistoryTime is echoed; when not given the service reports the epoch
    # (recordings: ios UtilRecordings/listParticipants.json, android canListMessages).
    shares = {p.identifier.raw_id: as_aware(p.share_history_time) for p in participants}
    assert abs((shares[bob.raw_id] - bob_shares_from).total_seconds()) < 1
    assert shares[carol.raw_id] == EPOCH
    assert shares[alice.raw_id] == EPOCH

    # The new participants reach the thread and see it in their list.
    assert bob.thread(thread_id).get_properties().id == thread_id
    assert thread_id in {t.id for t in carol.chat.list_chat_threads()}

    # Adding produces a participantAdded system message naming the added users.
    added = [m for m in thread.list_messages() if m.type == ChatMessageType.PARTICIPANT_ADDED]
    assert any(
        {bob.raw_id, carol.raw_id} <= {p.identifier.raw_id for p in m.content.participants}
        for m in added
    )


def test_add_existing_participant_is_no_change(make_person):
    alice, bob = make_person(), make_person()
    thread_id = alice.chat.create_chat_thread(
        "Twice", thread_participants=[bob.participant("Bob")]
    ).chat_thread.id
    thread = alice.thread(thread_id)

    assert thread.add_participants([bob.participant("Bob")]) == []
    assert sorted(p.identifier.raw_id for p in thread.list_participants()) == sorted(
        [alice.raw_id, bob.raw_id]
    )


def test_list_participants_paging_and_skip(make_person):
    alice, bob, carol = make_person(), make_person(), make_person()
    thread_id = alice.chat.create_chat_thread(
        "Paging", thread_participants=[bob.participant("Bob"), carol.participant("Carol")]
    ).chat_thread.id
    thread = alice.thread(thread_id)

    _, items = collect_pages(thread.list_participants(results_per_page=1), 1)
    assert len(items) == 3
    assert _ids(items) == {alice.raw_id, bob.raw_id, carol.raw_id}

    skipped = list(thread.list_participants(skip=1))
    assert len(skipped) == 2
    assert _ids(skipped) <= _ids(items)

    _, paged_skipped = collect_pages(thread.list_participants(results_per_page=1, skip=1), 1)
    assert len(paged_skipped) == 2

    assert list(thread.list_participants(skip=3)) == []


def test_official_list_participants_scenario(make_person):
    # sdk-clients.md §3.3: thread with user1, add user2,
    # list_participants(results_per_page=1, skip=1) -> exactly 1 in total.
    alice, bob = make_person(), make_person()
    thread_id = alice.chat.create_chat_thread(
        "Official", thread_participants=[alice.participant("Alice")]
    ).chat_thread.id
    thread = alice.thread(thread_id)
    assert thread.add_participants([bob.participant("Bob")]) == []

    _, items = collect_pages(thread.list_participants(results_per_page=1, skip=1), 1)
    assert len(items) == 1


def test_remove_participant(make_person):
    alice, bob = make_person(), make_person()
    thread_id = alice.chat.create_chat_thread(
        "Remove", thread_participants=[bob.participant("Bob")]
    ).chat_thread.id
    thread = alice.thread(thread_id)
    bob_thread = bob.thread(thread_id)
    bob_thread.send_message("bye")

    thread.remove_participant(bob.user)

    assert _ids(thread.list_participants()) == {alice.raw_id}
    removed = [
        m for m in thread.list_messages() if m.type == ChatMessageType.PARTICIPANT_REMOVED
    ]
    assert len(removed) == 1
    assert {p.identifier.raw_id for p in removed[0].content.participants} == {bob.raw_id}
    assert removed[0].content.initiator.raw_id == alice.raw_id

    # A removed user can no longer post to the thread (learn.microsoft.com chat
    # concepts: removed users "can't send or receive new messages")...
    with pytest.raises(HttpResponseError) as ex:
        bob_thread.send_message("still here?")
    assert ex.value.status_code == 403
    # ...nor list it: the service answers 403 to listMessages from a removed user
    # (observed: Azure/communication-ui-library PR #2777, "we get a 403 permission
    # denied error ... after ... the current user was removed ... calling
    # listMessages"). Note the concepts page claims removed users can still view
    # earlier history; the observed service behaviour is what is asserted here.
    with pytest.raises(HttpResponseError) as ex:
        list(bob_thread.list_messages())
    assert ex.value.status_code == 403


def test_share_history_time_hides_earlier_messages(make_person):
    alice, bob = make_person(), make_person()
    thread_id = alice.chat.create_chat_thread(
        "History", thread_participants=[alice.participant("Alice")]
    ).chat_thread.id
    thread = alice.thread(thread_id)

    before = thread.send_message("before bob joined").id
    time.sleep(0.05)
    failures = thread.add_participants(
        [bob.participant("Bob", share_history_time=utcnow())]
    )
    assert failures == []
    time.sleep(0.05)
    after = thread.send_message("after bob joined").id

    bob_texts = [
        m for m in bob.thread(thread_id).list_messages() if m.type == ChatMessageType.TEXT
    ]
    ids = [m.id for m in bob_texts]
    assert after in ids
    assert before not in ids

    # The earlier participant still sees everything.
    alice_ids = {m.id for m in thread.list_messages()}
    assert {before, after} <= alice_ids
