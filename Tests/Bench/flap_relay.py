#!/usr/bin/env python3
"""A camera that drops its sessions: a TCP relay on 127.0.0.1 that forwards each RTSP connection to the
camera behind it and resets it (RST, SO_LINGER 0) after PERIOD seconds, accepting the next one at once —
issue 12 case 1's flapping camera, for `make bench`. Usage: flap_relay.py LISTEN_PORT UPSTREAM_PORT PERIOD.
Prints "relay ready PORT" once listening; stops on SIGTERM."""
import signal, socket, struct, sys, threading, time

listen_port, upstream_port, period = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass


def serve(client):
    upstream = socket.create_connection(("127.0.0.1", upstream_port))
    pumps = [threading.Thread(target=pump, args=(a, b), daemon=True) for a, b in ((client, upstream), (upstream, client))]
    for t in pumps:
        t.start()
    time.sleep(period)
    # A reset: linger 0, wake the pumps' reads (shutdown of the read side sends nothing), then close, which
    # sends RST once no thread holds the socket any more.
    for s in (client, upstream):
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.shutdown(socket.SHUT_RD)
        except OSError:
            pass
    for t in pumps:
        t.join(2)
    for s in (client, upstream):
        s.close()


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", listen_port))
server.listen(8)
print(f"relay ready {server.getsockname()[1]}", flush=True)
while True:
    c, _ = server.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
