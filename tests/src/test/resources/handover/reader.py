"""Re-opens a key file every 20 ms for a while, as an agent across a daemon upgrade would.

Prints one JSON line: opens, errors (time and errno), open latency (p50, max), the fingerprints
of the keys read (never the keys), and whether a descriptor held open all along still reads the
same bytes at the end. Usage: reader.py PATH SECONDS [STARTED]: STARTED, a file created once
ten opens have succeeded (the test starts the takeover then, not after a guessed pause).
"""
import hashlib
import json
import os
import sys
import time

path, seconds = sys.argv[1], float(sys.argv[2])
started = sys.argv[3] if len(sys.argv) > 3 else None
held = os.open(path, os.O_RDONLY)
first = os.pread(held, 4096, 0)
errors, latencies, keys = [], [], set()
end = time.monotonic() + seconds
while time.monotonic() < end:
    t = time.monotonic()
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            data = os.read(fd, 4096)
        finally:
            os.close(fd)
        keys.add("sha256:" + hashlib.sha256(data).hexdigest()[:16])
        if started and len(latencies) == 9:
            open(started, "w").close()
    except OSError as e:
        errors.append("%.3f errno %d" % (time.time(), e.errno))
    latencies.append((time.monotonic() - t) * 1000)
    time.sleep(0.02)
try:
    again = os.pread(held, 4096, 0)
    held_same = again == first
except OSError as e:
    held_same = "errno %d" % e.errno
os.close(held)
latencies.sort()
print(json.dumps({"opens": len(latencies), "errors": errors, "p50_ms": latencies[len(latencies) // 2],
                  "p99_ms": latencies[int(len(latencies) * 0.99)], "max_ms": latencies[-1], "keys": sorted(keys),
                  "held_same": held_same}))
