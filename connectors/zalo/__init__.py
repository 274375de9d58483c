"""Zalo Official Account (+ ZNS): residents chat with the OA; campaigns reach people by OA message or ZNS template.

POST /webhooks/zalo   every Zalo event, signed with X-ZEvent-Signature. Answered 200 at once (Zalo wants an answer
                      within 2 s and retries otherwise) and handled after the answer, each event once. An event
                      stamped outside the freshness window (a replay of an old signed event) is answered 200 too,
                      and nothing is done or stored: any other answer would only make Zalo send it again.

Input: `user_send_text` (typed, or a button's payload) goes to the resident's conversation; `follow` / `unfollow`;
`user_submit_info` (the phone shared from the request_user_info card) links the Zalo user to a person and opens
their conversation; `user_received_message` with a `tracking_id` is a ZNS delivery receipt. Anything else is
acknowledged and ignored.
Output: `ZaloClient` sends consultation (CS) messages and ZNS templates with the OA's rotating access token;
`ZaloChannel` and `ZnsChannel` are the campaigns' outbound channels.

    events.py         what Zalo posts, and its signature
    inbound.py        the webhook and what each event does
    conversations.py  a user's conversations through the conversation service, one exchange at a time
    client.py         the OA's HTTP client (CS messages, ZNS, the token refresh)
    outbound.py       ZaloChannel and ZnsChannel
    store.py          Zalo users, the OA's token pair, handled events, ZNS receipts
"""
