"""The socket that several uvicorn workers share hands out connections with TCP_NODELAY."""

from __future__ import annotations

import socket

import uvicorn

from serving.server import listening_socket


def accepted_nodelay(listener: socket.socket) -> int:
    """TCP_NODELAY of a connection accepted on ``listener``."""
    listener.listen()
    with socket.create_connection(listener.getsockname()[:2]), listener.accept()[0] as conn:
        return conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_connections_of_the_shared_socket_have_nodelay() -> None:
    # Without it every keep-alive response waited ~40 ms for the client's delayed ACK.
    config = uvicorn.Config("serving.main:create_app", factory=True, host="127.0.0.1",
                            port=0, workers=2, log_config=None)
    with config.bind_socket() as plain:  # uvicorn's own: the cause
        assert accepted_nodelay(plain) == 0
    with listening_socket(config) as shared:
        assert accepted_nodelay(shared) != 0
