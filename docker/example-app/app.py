"""Example app: talks to the emulator by its Compose service name, over HTTPS, with the official SDKs.

Configuration, as an app would get it for the real service:
  ACS_CONNECTION_STRING  endpoint=https://acs-emulator:8443/;accesskey=...
  ACS_EMULATOR_CA_URL    where to fetch the emulator's CA (plain HTTP), e.g.
                         http://acs-emulator:8080/_emulator/ca.pem; unset to use REQUESTS_CA_BUNDLE as is
"""

import os
import sys
import tempfile
import urllib.request


def trust_emulator_ca(url):
    path = os.path.join(tempfile.gettempdir(), "acs-emulator-ca.pem")
    with urllib.request.urlopen(url, timeout=10) as response, open(path, "wb") as out:
        out.write(response.read())
    # requests (sync clients) and aiohttp (.aio clients) read these.
    os.environ["REQUESTS_CA_BUNDLE"] = path
    os.environ["SSL_CERT_FILE"] = path
    return path


def main():
    conn = os.environ["ACS_CONNECTION_STRING"]
    ca_url = os.environ.get("ACS_EMULATOR_CA_URL")
    if ca_url:
        print(f"trusting the emulator CA from {ca_url}", flush=True)
        trust_emulator_ca(ca_url)

    from azure.communication.chat import ChatClient, CommunicationTokenCredential
    from azure.communication.identity import CommunicationIdentityClient

    endpoint = dict(p.split("=", 1) for p in conn.split(";") if "=" in p)["endpoint"]
    identity = CommunicationIdentityClient.from_connection_string(conn)
    user, token = identity.create_user_and_token(scopes=["chat"])
    print(f"created user {user.properties['id']}", flush=True)

    chat = ChatClient(endpoint, CommunicationTokenCredential(token.token))
    thread_id = chat.create_chat_thread("Lunch").chat_thread.id
    thread = chat.get_chat_thread_client(thread_id)
    sent = thread.send_message("Pizza?", sender_display_name="Ann")
    print(f"thread {thread_id}: sent message {sent.id}", flush=True)

    contents = [m.content.message for m in thread.list_messages() if m.type == "text"]
    if contents != ["Pizza?"]:
        print(f"unexpected messages: {contents!r}", file=sys.stderr)
        return 1
    print(f"OK: {endpoint} answered over HTTPS with a certificate for its service name", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
