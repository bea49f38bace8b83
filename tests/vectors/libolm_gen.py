"""Writes tests/vectors/libolm_v1.json: pickles, messages and keys made by
libolm itself (through python-olm from PyPI, which bundles libolm 3.2), so
roomseal's Olm, Megolm and libolm-pickle code is checked against the C
reference implementation, not only against vodozemac.

Run: python3 -m venv v && v/bin/pip install python-olm && v/bin/python
tests/vectors/libolm_gen.py > tests/vectors/libolm_v1.json
The output differs on every run (libolm draws its own randomness); the
test checks relations (roomseal reads what libolm wrote), not bytes.
"""

import json

import olm

KEY = "libolm pickle key"


def main():
    alice = olm.Account()
    bob = olm.Account()
    bob.generate_one_time_keys(2)
    otks = list(bob.one_time_keys["curve25519"].values())
    bob.generate_fallback_key()
    bob.mark_keys_as_published()
    a_id = alice.identity_keys
    b_id = bob.identity_keys

    a = olm.OutboundSession(alice, b_id["curve25519"], otks[0])
    first = a.encrypt("first")
    b = olm.InboundSession(bob, first, a_id["curve25519"])
    bob.remove_one_time_keys(b)
    assert b.decrypt(first) == "first"
    for text in ["second", "third"]:
        assert b.decrypt(a.encrypt(text)) == text
    reply1 = b.encrypt("reply one")
    reply2 = b.encrypt("reply two")
    assert a.decrypt(reply1) == "reply one"
    after = a.encrypt("after reply")

    # A second initiator session to Bob's other one-time key: its first
    # message starts an inbound session on the imported Bob account.
    a2 = olm.OutboundSession(alice, b_id["curve25519"], otks[1])
    pre_key = a2.encrypt("to the second key")

    group = olm.OutboundGroupSession()
    session_key = group.session_key
    inbound = olm.InboundGroupSession(session_key)
    group_messages = [group.encrypt("group %d" % i) for i in range(3)]
    assert inbound.decrypt(group_messages[0]) == ("group 0", 0)
    group_pickle = group.pickle(KEY)
    next_message = group.encrypt("group 3")

    out = {
        "pickle_key": KEY,
        "alice_identity": a_id,
        "bob_identity": b_id,
        "alice_account": alice.pickle(KEY),
        "bob_account": bob.pickle(KEY),
        "signed_message": "It's a secret to everybody",
        "alice_signature": alice.sign("It's a secret to everybody"),
        "alice_session": a.pickle(KEY),
        "bob_session": b.pickle(KEY),
        "session_id": a.id,
        "in_flight_to_alice": {"type": reply2.message_type, "body": reply2.ciphertext,
                               "plaintext": "reply two"},
        "in_flight_to_bob": {"type": after.message_type, "body": after.ciphertext,
                             "plaintext": "after reply"},
        "pre_key_to_second_key": {"type": pre_key.message_type, "body": pre_key.ciphertext,
                                  "plaintext": "to the second key"},
        "group_session_id": group.id,
        "group_session_key": session_key,
        "group_messages": group_messages,
        "group_outbound": group_pickle,
        "group_next_message": next_message,
        "group_inbound": inbound.pickle(KEY),
        "group_export_at_1": inbound.export_session(1),
    }
    text = {k: v.decode() if isinstance(v, bytes) else v for k, v in out.items()}
    print(json.dumps(text, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
