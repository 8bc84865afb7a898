#!/usr/bin/env python3
"""Wire compatibility, checked by an independent gRPC stack (grpcio, C core).

The request is encoded by hand from the seed article's schema (no generated
code, no knowledge of our added fields), exactly as an article-era client
would send it, and the reply is decoded the same way: unknown fields are
skipped, so the added pod_name/pod_ip must not disturb an old client.

Usage: grpc_interop.py TARGET_DIR   (where greet-server and greet-gateway are built)
Prints one line per check and "interop: N passed, M failed".
"""
import os
import urllib.request
import socket
import subprocess
import sys
import time

import grpc


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_bytes(number, payload):
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def parse(message):
    """Field number -> list of values (bytes for length-delimited, int for varint)."""
    fields, i = {}, 0
    while i < len(message):
        key, i = read_varint(message, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = read_varint(message, i)
        elif wire == 2:
            length, i = read_varint(message, i)
            value, i = message[i:i + length], i + length
        else:
            raise ValueError(f"unexpected wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


def read_varint(data, i):
    shift = result = 0
    while True:
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited early with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def identity(b):
    return b


def main():
    target = sys.argv[1]
    results = []

    def check(name, ok, detail=""):
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else ': ' + detail}")

    grpc_port = free_port()
    env = dict(os.environ, GRPC_PORT=str(grpc_port), POD_NAME="greetserver-deploy-7595ccbdd5-l8kmv",
               POD_IP="172.17.0.2", METRICS_PORT="0")
    server = subprocess.Popen([os.path.join(target, "greet-server")], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gateway = None
    try:
        wait_port(grpc_port, server)
        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        greet = channel.unary_unary("/greet.GreetService/Greet", request_serializer=identity,
                                    response_deserializer=identity)
        greeting = field_bytes(1, b"Hitesh") + field_bytes(2, b"Pattanayak")
        reply = parse(greet(field_bytes(1, greeting), timeout=5))
        text = reply.get(1, [b""])[0].decode()
        check("Greet: article reply text", text ==
              "Hello, Hitesh Pattanayak from pod: name(greetserver-deploy-7595ccbdd5-l8kmv), ip(172.17.0.2).", text)
        check("Greet: added fields 2 and 3 carry pod name and IP",
              reply.get(2) == [b"greetserver-deploy-7595ccbdd5-l8kmv"] and reply.get(3) == [b"172.17.0.2"],
              repr(reply))

        health = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=identity,
                                     response_deserializer=identity)
        status = parse(health(b"", timeout=5)).get(1, [0])[0]
        check("Health/Check: SERVING", status == 1, f"status {status}")

        try:
            greet(b"", timeout=5)
            check("Greet without greeting: INVALID_ARGUMENT", False, "call succeeded")
        except grpc.RpcError as err:
            check("Greet without greeting: INVALID_ARGUMENT", err.code() == grpc.StatusCode.INVALID_ARGUMENT,
                  str(err.code()))

        rest_port, observe_port = free_port(), free_port()
        env = dict(os.environ, GATEWAY_PORT=str(rest_port), OBSERVE_PORT=str(observe_port),
                   GATEWAY_GRPC_PORT="0", GATEWAY_BIND="127.0.0.1", GRPC_SERVER_HOST="127.0.0.1", GRPC_SERVER_PORT=str(grpc_port))
        gateway = subprocess.Popen([os.path.join(target, "greet-gateway")], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(observe_port, gateway)
        observe = grpc.insecure_channel(f"127.0.0.1:{observe_port}")
        get_state = observe.unary_unary("/greet.observe.v1.Observer/GetState", request_serializer=identity,
                                        response_deserializer=identity)
        state = parse(get_state(b"", timeout=5))
        check("Observer/GetState: mode sticky", state.get(1) == [1], repr(state.get(1)))

        watch = observe.unary_stream("/greet.observe.v1.Observer/Watch", request_serializer=identity,
                                     response_deserializer=identity)
        stream = watch(b"", timeout=10)
        first = parse(next(stream))
        check("Observer/Watch: first event is the snapshot (field 5)", 5 in first, repr(first.keys()))
        wait_port(rest_port, gateway)
        request = urllib.request.Request(f"http://127.0.0.1:{rest_port}/greet", method="POST",
                                         data=b'{"first_name": "A", "last_name": "B"}',
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read().decode()
        check("REST /greet through the gateway", body.startswith("reponse from Greet rpc: Hello, A B from pod: "), body)
        request_event = {}
        for _ in range(20):  # skip endpoint-set events until the request's event
            event = parse(next(stream))
            if 1 in event:
                request_event = parse(event[1][0])
                break
        check("Observer/Watch: a request event naming the pod",
              request_event.get(3) == [b"greetserver-deploy-7595ccbdd5-l8kmv"], repr(request_event))
        stream.cancel()
    finally:
        for proc in (gateway, server):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    passed = sum(results)
    print(f"interop: {passed} passed, {len(results) - passed} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
