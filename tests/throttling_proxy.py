"""A TCP proxy on 127.0.0.1 that slows one connection's uploads: a fault made at the network edge.

Tests use it to make one of two concurrent SFTP sessions slow, as a client on a slow link would be,
without touching our own code. Bytes from the client to the server are passed on at most
`bytes_per_second`; replies go back at full speed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

CHUNK_BYTES = 64 << 10


class ThrottlingProxy:
    def __init__(self, target_port: int, bytes_per_second: float) -> None:
        self.target_port = target_port
        self.bytes_per_second = bytes_per_second
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> ThrottlingProxy:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stops the proxy, whatever ended the block: nothing of a failure is its to handle."""
        self._stopping.set()
        for sock in [self._listener, *self._sockets]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(5)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [client, server]
            self._spawn(self._pipe, client, server, self.bytes_per_second)
            self._spawn(self._pipe, server, client, None)

    def _pipe(self, source: socket.socket, sink: socket.socket, rate: float | None) -> None:
        started, sent = time.monotonic(), 0
        try:
            while data := source.recv(CHUNK_BYTES):
                sink.sendall(data)
                sent += len(data)
                if rate:
                    ahead = sent / rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
