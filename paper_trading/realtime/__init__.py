"""Live updates over websockets: engine ticks -> channel layer group -> each owner's sockets.

* `messages`: the message shapes (JSON- and msgpack-safe; the REST API's field names).
* `publisher`: `ChannelsPublisher`, the event sink that sends a tick's messages to the account's
  group, and `publish_session_status` for session start/stop/finish.
* `auth`: websocket authentication by API token (`?token=<key>`) or the Django session.
* `consumers` / `routing`: `/ws/paper-trading/<account_id>/`.
"""
