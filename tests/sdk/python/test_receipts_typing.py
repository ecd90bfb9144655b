"""Read receipts and typing notifications.

References: api-contract.md §2 ops 14-16 (readReceipts POST 200, GET paged with
maxPageSize/skip, typing POST 200 with optional senderDisplayName), §2.4
(latest receipt per participant); sdk-clients.md §3.3 (official
test_list_read_receipts: user1 sends 2 messages + receipt each, user2 one ->
exactly 2 receipts; typing with and without display name).
"""

from sdk_helpers import as_aware, collect_pages, utcnow, wait_for


def test_read_receipts_keep_latest_per_participant(make_person):
    alice, bob = make_person(), make_person()
    thread_id = alice.chat.create_chat_thread(
        "Receipts", thread_participants=[bob.participant("Bob")]
    ).chat_thread.id
    alice_thread, bob_thread = alice.thread(thread_id), bob.thread(thread_id)

    first = alice_thread.send_message("one").id
    second = alice_thread.send_message("two").id
    reply = bob_thread.send_message("three").id

    # Bob reads Alice's messages one after the other; Alice reads Bob's reply.
    bob_thread.send_read_receipt(first)
    bob_thread.send_read_receipt(second)
    alice_thread.send_read_receipt(reply)

    def latest():
        receipts = list(alice_thread.list_read_receipts())
        by_sender = {r.sender.raw_id: r.chat_message_id for r in receipts}
        if by_sender.get(bob.raw_id) == second and by_sender.get(alice.raw_id) == reply:
            return receipts
        return None

    receipts = wait_for(latest) or list(alice_thread.list_read_receipts())
    assert len(receipts) == 2, [(r.sender.raw_id, r.chat_message_id) for r in receipts]
    by_sender = {r.sender.raw_id: r for r in receipts}
    assert by_sender[bob.raw_id].chat_message_id == second
    assert by_sender[alice.raw_id].chat_message_id == reply
    for receipt in receipts:
        assert abs((as_aware(receipt.read_on) - utcnow()).total_seconds()) < 60

    # Paging and the other participant's view agree.
    _, paged = collect_pages(bob_thread.list_read_receipts(results_per_page=1), 1)
    assert sorted((r.sender.raw_id, r.chat_message_id) for r in paged) == sorted(
        (r.sender.raw_id, r.chat_message_id) for r in receipts
    )
    assert len(list(alice_thread.list_read_receipts(skip=1))) == 1


def test_official_list_read_receipts_scenario(make_person):
    # user1 sends 2 messages and a receipt for each; user2 sends 1 and a receipt.
    alice, bob = make_person(), make_person()
    thread_id = alice.chat.create_chat_thread(
        "Official receipts", thread_participants=[bob.participant("Bob")]
    ).chat_thread.id
    alice_thread, bob_thread = alice.thread(thread_id), bob.thread(thread_id)

    for i in range(2):
        message_id = alice_thread.send_message(f"content {i}").id
        alice_thread.send_read_receipt(message_id)
    bob_message = bob_thread.send_message("content", sender_display_name="Bob").id
    bob_thread.send_read_receipt(bob_message)

    def two():
        items = [r for p in alice_thread.list_read_receipts(results_per_page=2, skip=0).by_page() for r in p]
        return items if len(items) == 2 else None

    items = wait_for(two) or [
        r for p in alice_thread.list_read_receipts(results_per_page=2, skip=0).by_page() for r in p
    ]
    assert len(items) == 2
    assert sum(1 for r in items if r.sender.raw_id == alice.raw_id) == 1


def test_send_typing_notification(make_person):
    alice, bob = make_person(), make_person()
    thread_id = alice.chat.create_chat_thread(
        "Typing", thread_participants=[bob.participant("Bob")]
    ).chat_thread.id
    assert alice.thread(thread_id).send_typing_notification() is None
    assert bob.thread(thread_id).send_typing_notification(sender_display_name="John") is None
