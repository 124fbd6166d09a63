"""On the GPU host: waits for vLLM's /health after its start, and writes the cold start (process start to ready).

usage: python3 wait_ready.py HEALTH_URL START_EPOCH PID OUT.txt"""

import os
import sys
import time
import urllib.request


def wait(url: str, started: float, pid: int, out: str, limit_s: float = 420.0) -> None:
    while time.time() - started < limit_s:
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                seconds = time.time() - started
                print(f"ready after {seconds:.1f} s")
                with open(out, "w") as f:
                    f.write(f"{seconds:.2f}\n")
                return
        except OSError:
            pass
        try:
            os.kill(pid, 0)
        except OSError:
            print("the server died before it was ready")
            return
        time.sleep(0.5)
    print(f"not ready after {limit_s:.0f} s")


if __name__ == "__main__":
    wait(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
