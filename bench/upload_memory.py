"""Peak memory of the web process while a dataset CSV uploads through it to S3: flat in the file's size.

    .venv/bin/python bench/upload_memory.py [--sizes 50 500] [--smoke]

One fresh SQLite installation (migrated, a user, a team with room for the files, an API token, a
dataset) stores its artifacts in a bucket of a real S3 HTTP server (moto's, its own process on a
loopback port). For each size a fresh web server process (`runserver --noreload`: one process,
so its peak is the request's) is started on that installation, warmed up with a 1 MB upload
(every code path imported), then sent one CSV of that size as a streamed multipart POST to the
dataset's versions API. The request ends once the file is in the bucket (Django streams it to a
temp file, boto3 sends that in parts). Read then: the process's peak resident memory (VmHWM in
/proc/<pid>/status) and the object's size in the bucket (it must equal the file's).

Acceptance (issue 16): the peak with the largest file is within ±10% of the peak with the
smallest (50 MB against 500 MB by default). Exits 1 if it is not, or if an upload fails.

--smoke: the same (the S3 server, fresh web processes, streamed uploads, the bucket check) with
5 MB and 50 MB files; the table is printed, the ±10% point is not judged.
"""

import argparse
import http.client
import json
import os
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.processes import lepton_env, manage, start, start_program, stop, wait_until  # noqa: E402
from tests.s3 import KEYS, REGION, S3Bucket, _free_port  # noqa: E402

SMOKE = {"sizes": [5, 50]}
MB = 1024**2
SETUP = """
from django.contrib.auth import get_user_model
from apps.accounts.models import TeamQuota
from apps.accounts.services import team_create
from apps.accounts.tokens import token_create
from apps.datasets.services import dataset_create
user = get_user_model().objects.create_user("bench", password="bench-password-123")
team = team_create(creator=user, name="Bench", slug="bench")
TeamQuota.objects.filter(team=team).update(storage_bytes=100 * 1024**3)
dataset = dataset_create(actor=user, team=team, name="big", task="tabular_classification")
print(dataset.pk, token_create(user=user, name="bench")[1])
"""


def csv_file(path: Path, size: int) -> Path:
    """A CSV of exactly `size` bytes: a header, then rows of four features and a label."""
    rows = "".join(f"{i % 7}.25,{i % 5}.5,{i % 3}.75,{i % 11}.125,{'abc'[i % 3]}\n" for i in range(40_000)).encode()
    header = b"f1,f2,f3,f4,label\n"
    with path.open("wb") as out:
        out.write(header)
        left = size - len(header)
        while left > 0:
            block = rows[:left] if left < len(rows) else rows
            if left < len(rows):  # end on a whole row
                block = block[: block.rfind(b"\n") + 1].ljust(left, b"\n")
            out.write(block)
            left -= len(block)
    return path


def upload(url: str, token: str, dataset: int, path: Path) -> dict:
    """POST the file as multipart/form-data, streamed from disk with a Content-Length (never in memory)."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=600)
    connection.putrequest("POST", f"/api/v1/datasets/{dataset}/versions/")
    connection.putheader("Authorization", f"Bearer {token}")
    connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    connection.putheader("Content-Length", str(len(head) + path.stat().st_size + len(tail)))
    connection.endheaders()
    connection.send(head)
    with path.open("rb") as source:
        while chunk := source.read(MB):
            connection.send(chunk)
    connection.send(tail)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    if response.status != 202:
        sys.exit(f"upload of {path.name} answered {response.status}: {body[:500]!r}")
    return json.loads(body)


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (a loopback URL)
            return True
    except OSError:
        return False


def measure(env: dict, token: str, dataset: int, bucket: S3Bucket, files: dict[str, Path], size_mb: int) -> dict:
    """A fresh web server: warm-up upload, then the file of `size_mb`; its peak memory and what landed."""
    url = f"http://127.0.0.1:{_free_port()}"
    web = start(env, "runserver", url.removeprefix("http://"), "--noreload")
    try:
        wait_until(lambda: _answers(f"{url}/healthz"), seconds=60, what="the web server")
        upload(url, token, dataset, files["warmup"])
        warm = peak_rss(web.pid)
        before = set(bucket.object_keys())
        started = time.monotonic()
        upload(url, token, dataset, files[str(size_mb)])
        seconds = time.monotonic() - started
        peak = peak_rss(web.pid)
    finally:
        log = stop(web)
    new = [key for key in bucket.object_keys() if key not in before]
    sizes = [bucket.client.head_object(Bucket=bucket.name, Key=key)["ContentLength"] for key in new]
    if sizes != [size_mb * MB]:
        sys.exit(f"expected one object of {size_mb * MB} bytes in the bucket, found {sizes}\n{log[-2000:]}")
    return {"size_mb": size_mb, "warm": warm, "peak": peak, "seconds": seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 500], help="CSV sizes in MB")
    parser.add_argument("--smoke", action="store_true", help="5 and 50 MB, not judged")
    args = parser.parse_args()
    sizes = SMOKE["sizes"] if args.smoke else sorted(args.sizes)
    with tempfile.TemporaryDirectory(prefix="lepton-upload-memory-") as tmp:
        tmp = Path(tmp)
        endpoint = f"http://127.0.0.1:{_free_port()}"
        server = start_program([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", endpoint.rsplit(":")[-1]])
        try:
            wait_until(lambda: _answers(f"{endpoint}/moto-api/"), seconds=60, what="the S3 server")
            bucket = S3Bucket(endpoint, "lepton-bench")
            os.environ.update(KEYS)
            bucket.client.create_bucket(Bucket=bucket.name)
            env = lepton_env(tmp / "web", **bucket.env, LEPTON_CACHE_DIR=str(tmp / "web" / "cache"))
            dataset, token = manage(env, "shell", "-c", SETUP).split()[-2:]
            files = {"warmup": csv_file(tmp / "warmup.csv", MB)}
            files |= {str(size): csv_file(tmp / f"upload-{size}mb.csv", size * MB) for size in sizes}
            rows = [measure(env, token, int(dataset), bucket, files, size) for size in sizes]
        finally:
            stop(server)
    print(f"web process peak memory (VmHWM) uploading a CSV to S3 ({REGION}, moto server on loopback)")
    print(f"{'CSV':>8} {'after warm-up':>14} {'peak':>10} {'vs smallest':>12} {'upload s':>9}")
    for row in rows:
        ratio = row["peak"] / rows[0]["peak"]
        print(
            f"{row['size_mb']:>6} MB {row['warm'] / MB:>11.1f} MB {row['peak'] / MB:>7.1f} MB "
            f"{ratio:>11.3f}x {row['seconds']:>9.1f}"
        )
    ratio = rows[-1]["peak"] / rows[0]["peak"]
    flat = 0.9 <= ratio <= 1.1
    if args.smoke:
        print(f"--smoke: {rows[-1]['size_mb']} MB vs {rows[0]['size_mb']} MB peak ratio {ratio:.3f} (not judged)")
        return 0
    print(f"{rows[-1]['size_mb']} MB vs {rows[0]['size_mb']} MB: peak ratio {ratio:.3f}, within ±10%: {flat}")
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
