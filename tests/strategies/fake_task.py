"""A stand-in for a TensorFlow task, for the launcher's tests: it opens
the port its TF_CONFIG gives it, says hello, then does what ACTIONS (a
JSON object of task name -> action) says for its task:

    "exit:N:S"  exit with status N after S seconds
    "noport"    never open the port; sleep
    "stubborn"  ignore SIGTERM; sleep
    (missing)   sleep until killed
"""

import json
import os
import signal
import socket
import sys
import time

config = json.loads(os.environ["TF_CONFIG"])
job, index = config["task"]["type"], config["task"]["index"]
name = f"{job}:{index}"
action = json.loads(sys.argv[1]).get(name, "sleep")
if action != "noport":
    port = int(config["cluster"][job][index].rsplit(":", 1)[1])
    server = socket.socket()
    server.bind(("127.0.0.1", port))
    server.listen()
print(f"hello from {name}", flush=True)
if action.startswith("exit:"):
    _, code, seconds = action.split(":")
    time.sleep(float(seconds))
    print(f"{name} exits with {code}", flush=True)
    sys.exit(int(code))
if action == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
while True:
    time.sleep(1)
