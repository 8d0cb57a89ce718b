"""WSGI app for test_gunicorn.py: fills a cachee region in the gunicorn
master at import (gunicorn --preload), then serves it from the workers.

  GET  /get?key=K[&sleep=S]    {"value": str | null, "pid", "ppid", "master_pid"}
  GET  /numpy?key=K[&sleep=S]  {"sum", "shape", "dtype", ...}
  POST /set?key=K              stores the request body under K
  GET  /stats                  cache.stats()
  GET  /tiers?key=K            cache.get(K) (a miss loads the tiers when
                               l1_bytes is set), then the tier state
The region path comes from $CACHEE_TEST_REGION; $CACHEE_TEST_L1 (bytes), when
set, configures L1 at import -- in the master, which must not load it.
"""
import json
import os
import time
from urllib.parse import parse_qs

import numpy as np

import cachee

PATH = os.environ["CACHEE_TEST_REGION"]
MASTER_PID = os.getpid()
N = 100

L1 = int(os.environ.get("CACHEE_TEST_L1") or 0)
cache = cachee.SharedCache(PATH, size_bytes=16 << 20, l1_bytes=L1 or None)
for i in range(N):
    cache.set("master:%d" % i, b"master-value-%d" % i)
    cache.set_numpy("vec:%d" % i, np.full(32, i, dtype=np.float32))
cache.set("filled_by", b"%d" % MASTER_PID)


def app(environ, start_response):
    qs = parse_qs(environ.get("QUERY_STRING", ""))
    key = qs.get("key", [""])[0]
    delay = float(qs.get("sleep", ["0"])[0])
    if delay:
        time.sleep(delay)
    path = environ.get("PATH_INFO", "/")
    method = environ.get("REQUEST_METHOD", "GET")
    body = {"pid": os.getpid(), "ppid": os.getppid(), "master_pid": MASTER_PID}
    status = "200 OK"
    try:
        if path == "/get":
            v = cache.get(key)
            body["value"] = None if v is None else v.decode()
        elif path == "/numpy":
            a = cache.get_numpy(key)
            if a is not None:
                body.update(sum=float(a.sum()), shape=list(a.shape), dtype=str(a.dtype))
        elif path == "/set" and method == "POST":
            n = int(environ.get("CONTENT_LENGTH") or 0)
            cache.set(key, environ["wsgi.input"].read(n))
            body["stored"] = key
        elif path == "/stats":
            body["stats"] = cache.stats()
        elif path == "/tiers":
            v = cache.get(key)
            body["value"] = None if v is None else v.decode()
            body["state"] = cachee._cachee._tiers_state()
            body["tiers"] = cache.stats().get("tiers")
        else:
            status = "404 Not Found"
    except Exception as e:  # report, do not kill the worker
        status = "500 Internal Server Error"
        body["error"] = "%s: %s" % (type(e).__name__, e)
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(data)))])
    return [data]
