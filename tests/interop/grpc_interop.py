#!/usr/bin/env python3
"""Wire compatibility, checked by an independent gRPC stack (grpcio, C core).

The request is encoded by hand from the seed article's schema (no generated
code, no knowledge of our added fields), exactly as an article-era client
would send it, and the reply is decoded the same way: unknown fields are
skipped, so the added pod_name/pod_ip must not disturb an old client.
The same client also calls Greet, grpc.health.v1 Check and server reflection
(a bidirectional stream) through the gateway's gRPC ingress, sticky and
balanced, and checks which pod answered each call.

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


def stop(procs):
    for proc in procs:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def pod_of(call):
    """The pod greet-server names in its response headers (x-pod-name)."""
    return dict(call.initial_metadata()).get("x-pod-name", "")


def ingress_calls(channel):
    """Greet, health Check and reflection (a bidirectional stream) through
    the gateway's gRPC ingress; the pod that answered each call, in order."""
    pods, problems = [], []
    greet = channel.unary_unary("/greet.GreetService/Greet", request_serializer=identity,
                                response_deserializer=identity)
    for i in range(6):
        greeting = field_bytes(1, b"Ada") + field_bytes(2, f"Lovelace-{i}".encode())
        reply, call = greet.with_call(field_bytes(1, greeting), timeout=5)
        fields = parse(reply)
        pod = fields.get(2, [b""])[0].decode()
        if pod != pod_of(call) or f"Lovelace-{i}" not in fields.get(1, [b""])[0].decode():
            problems.append(f"Greet {i}: {fields!r} with x-pod-name {pod_of(call)!r}")
        pods.append(pod)
    health = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=identity,
                                 response_deserializer=identity)
    for i in range(6):
        reply, call = health.with_call(b"", timeout=5)
        if parse(reply).get(1) != [1]:
            problems.append(f"Health/Check {i}: not SERVING: {parse(reply)!r}")
        pods.append(pod_of(call))
    reflect = channel.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                    request_serializer=identity, response_deserializer=identity)
    for i in range(3):
        # Two requests on one stream, two answers: list the services, then
        # the file that defines Greet.
        requests = [field_bytes(7, b"*"), field_bytes(4, b"greet.GreetService")]
        call = reflect(iter(requests), timeout=5)
        answers = [parse(answer) for answer in call]
        services = [parse(s).get(1, [b""])[0] for s in parse(answers[0].get(6, [b""])[0]).get(1, [])] \
            if answers else []
        files = parse(answers[1].get(4, [b""])[0]).get(1, []) if len(answers) > 1 else []
        if len(answers) != 2 or b"greet.GreetService" not in services or not files:
            problems.append(f"reflection {i}: {len(answers)} answers, services {services!r}, {len(files)} files")
        pods.append(pod_of(call))
    return pods, problems


def ingress(target, check):
    """Three greet-servers behind the gateway's gRPC ingress (static
    discovery, sticky to the first): sticky puts every call on one pod,
    balanced sends each call to the next pod in exact round robin."""
    ports = [free_port() for _ in range(3)]
    servers = [subprocess.Popen([os.path.join(target, "greet-server")],
                                env=dict(os.environ, GRPC_PORT=str(port), POD_NAME=f"ingress-pod-{n}",
                                         POD_IP="127.0.0.1", METRICS_PORT="0"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for n, port in enumerate(ports)]
    gateway = None
    try:
        for port, server in zip(ports, servers):
            wait_port(port, server)
        rest_port, observe_port, ingress_port = free_port(), free_port(), free_port()
        env = dict(os.environ, GATEWAY_PORT=str(rest_port), OBSERVE_PORT=str(observe_port),
                   GATEWAY_GRPC_PORT=str(ingress_port), GATEWAY_BIND="127.0.0.1", GRPC_SERVER_HOST="127.0.0.1",
                   GRPC_SERVER_PORT=str(ports[0]),
                   GATEWAY_ENDPOINTS=",".join(f"127.0.0.1:{port}" for port in ports))
        env.pop("GATEWAY_CONTROL_TOKEN", None)
        gateway = subprocess.Popen([os.path.join(target, "greet-gateway"), "--discovery", "static"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(ingress_port, gateway)
        wait_port(rest_port, gateway)
        channel = grpc.insecure_channel(f"127.0.0.1:{ingress_port}")

        pods, problems = ingress_calls(channel)
        check("ingress, sticky: Greet, Health/Check, reflection answered", not problems, "; ".join(problems))
        check("ingress, sticky: every call on one pod", set(pods) == {"ingress-pod-0"}, repr(pods))

        request = urllib.request.Request(f"http://127.0.0.1:{rest_port}/mode", method="PUT",
                                         data=b'{"mode": "balanced"}', headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
        # The same client connection: the gateway balances calls, not connections.
        pods, problems = ingress_calls(channel)
        check("ingress, balanced: Greet, Health/Check, reflection answered", not problems, "; ".join(problems))
        rotation = pods[:3]
        check("ingress, balanced: exact round robin per call over the 3 pods",
              sorted(rotation) == ["ingress-pod-0", "ingress-pod-1", "ingress-pod-2"]
              and all(pod == rotation[i % 3] for i, pod in enumerate(pods)), repr(pods))
        channel.close()
    finally:
        stop([gateway] + servers)


def main():
    target = sys.argv[1]
    results = []

    def check(name, ok, detail=""):
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else ': ' + detail}")

    ingress(target, check)

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
        stop([gateway, server])
    passed = sum(results)
    print(f"interop: {passed} passed, {len(results) - passed} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
