"""Messages: send, get, list (paged, newest first, system messages), edit, delete.

References: api-contract.md §1 (message id = epoch-ms string, sequenceId
"1","2",... shared with system messages), §2.1 (seq 1 participantAdded with
creator + initial members, seq 2 topicUpdated), §2.2 (only the sender edits or
deletes), §2.5 (newest first, no nextLink on the last page), §5 (edit sets
editedOn and bumps version; delete keeps the message with deletedOn);
recordings android-chat-2021-09-07 canListMessages / canUpdateExistingMessage;
sdk-clients.md §3.3 (JS: pages == ceil(total / maxPageSize)).
"""

import math

import pytest
from azure.communication.chat import ChatMessageType
from azure.core.exceptions import HttpResponseError

from sdk_helpers import as_aware, collect_pages, utcnow


def _thread_with_bob(alice, bob, topic="Messages"):
    thread_id = alice.chat.create_chat_thread(
        topic,
        thread_participants=[alice.participant("Alice"), bob.participant("Bob")],
    ).chat_thread.id
    return thread_id


def test_send_and_get_message(make_person):
    alice, bob = make_person(), make_person()
    thread_id = _thread_with_bob(alice, bob)
    thread = alice.thread(thread_id)

    sent = thread.send_message(
        "hello world", sender_display_name="sender name", metadata={"tags": "sometag"}
    )
    assert sent.id and sent.id.isdigit(), sent.id  # epoch-ms string

    for reader in (alice, bob):
        msg = reader.thread(thread_id).get_message(sent.id)
        assert msg.id == sent.id
        assert msg.type == ChatMessageType.TEXT
        assert msg.type == "text"
        assert msg.content.message == "hello world"
        assert msg.sender_display_name == "sender name"
        assert msg.sender.raw_id == alice.raw_id
        assert msg.metadata == {"tags": "sometag"}
        assert msg.sequence_id
        assert msg.version == msg.id  # unedited: version == id (recordings, spec examples)
        assert msg.edited_on is None
        assert msg.deleted_on is None
        assert abs((as_aware(msg.created_on) - utcnow()).total_seconds()) < 60


def test_send_html_message(make_person):
    alice = make_person()
    thread = alice.thread(alice.chat.create_chat_thread("Html").chat_thread.id)
    sent = thread.send_message("<b>bold</b>", chat_message_type=ChatMessageType.HTML)
    assert thread.get_message(sent.id).type == ChatMessageType.HTML


def test_list_messages_pages_newest_first_with_system_messages(make_person):
    alice, bob = make_person(), make_person()
    thread_id = _thread_with_bob(alice, bob, topic="Paging topic")
    thread = alice.thread(thread_id)
    sent_ids = [thread.send_message(f"message {i}").id for i in range(3)]

    pages, items = collect_pages(thread.list_messages(results_per_page=2), 2)

    # 2 system messages from creation + 3 text messages, each exactly once.
    assert len(items) == 5
    assert len(pages) == math.ceil(len(items) / 2)  # no empty trailing page
    assert len({m.id for m in items}) == 5

    seqs = [int(m.sequence_id) for m in items]
    assert seqs == sorted(seqs, reverse=True), "messages must be newest first"
    assert sorted(seqs) == [1, 2, 3, 4, 5]

    texts = [m for m in items if m.type == ChatMessageType.TEXT]
    assert [m.id for m in texts] == list(reversed(sent_ids))
    assert [m.content.message for m in texts] == ["message 2", "message 1", "message 0"]

    by_seq = {int(m.sequence_id): m for m in items}
    added = by_seq[1]
    assert added.type == ChatMessageType.PARTICIPANT_ADDED
    assert added.sender is None  # system messages carry no sender
    assert {p.identifier.raw_id for p in added.content.participants} == {
        alice.raw_id,
        bob.raw_id,
    }
    assert added.content.initiator.raw_id == alice.raw_id
    topic = by_seq[2]
    assert topic.type == ChatMessageType.TOPIC_UPDATED
    assert topic.content.topic == "Paging topic"
    assert topic.content.initiator.raw_id == alice.raw_id

    # The other participant sees the same history.
    assert [m.id for m in bob.thread(thread_id).list_messages()] == [m.id for m in items]


def test_update_message(make_person):
    alice = make_person()
    thread = alice.thread(alice.chat.create_chat_thread("Edit").chat_thread.id)
    sent = thread.send_message("original", sender_display_name="Alice")
    before = thread.get_message(sent.id)

    thread.update_message(sent.id, content="edited")

    after = thread.get_message(sent.id)
    assert after.id == sent.id
    assert after.content.message == "edited"
    assert after.edited_on is not None
    assert after.version != before.version
    assert after.sequence_id == before.sequence_id
    assert after.deleted_on is None


def test_delete_message(make_person):
    alice = make_person()
    thread = alice.thread(alice.chat.create_chat_thread("Delete").chat_thread.id)
    sent = thread.send_message("to be deleted")

    thread.delete_message(sent.id)

    msg = thread.get_message(sent.id)
    assert msg.id == sent.id
    assert msg.deleted_on is not None


def test_other_participant_cannot_edit_or_delete_my_message(make_person):
    alice, bob = make_person(), make_person()
    thread_id = _thread_with_bob(alice, bob)
    sent = alice.thread(thread_id).send_message("mine")
    bob_thread = bob.thread(thread_id)

    with pytest.raises(HttpResponseError) as ex:
        bob_thread.update_message(sent.id, content="hijacked")
    assert ex.value.status_code == 403

    with pytest.raises(HttpResponseError) as ex:
        bob_thread.delete_message(sent.id)
    assert ex.value.status_code == 403

    msg = alice.thread(thread_id).get_message(sent.id)
    assert msg.content.message == "mine"
    assert msg.edited_on is None
    assert msg.deleted_on is None
