"""Image throughput: decode + validate + hash + filter per core, and HTTP fetching from a loopback server.

    python bench/images.py decode [--rounds 5] [--samples ../shared/samples]
    python bench/images.py fetch  [--rounds 3] [--urls 3000] [--samples ../shared/samples]

decode: `inspect_image` (Pillow with JPEG draft decoding, imagehash pHash + dHash, sha256, the filters) on the
web-sized JPEGs of the shared samples, one thread, against the straightforward peer (full decode, then
imagehash on the full image, then sha256). Figures are images per CPU-second (= per core), median of rounds,
with the ours/peer ratio taken round by round.

fetch: an aiohttp server in its own process serves those JPEGs under distinct URLs on 16 loopback addresses
(127.0.0.1-16, one port each, robots.txt absent), like 16 hosts. Clients, each over the same URL list:
  asyncio   our Fetcher (SSRF guard, robots.txt, limits, streaming cap), one process, 64 connections, 4 per host
  threads   the peer: 64 threads over a urllib3 pool (4 per host), streaming with the same byte cap, no policy
  asyncio-2 our Fetcher in two processes, URLs split by host as the fetch phase splits them (2 cores)
  full-2    as asyncio-2, plus decode/validate/hash of every image (what a fetch task does)
Figures are images per second (wall) and client CPU-milliseconds per image. The server shares the machine's
cores with the clients, so wall rates are a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import multiprocessing
import statistics
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omnicorpus.images.config import ImagesConfig  # noqa: E402
from omnicorpus.images.decode import inspect_image  # noqa: E402
from omnicorpus.images.fetch import FetchResult, Fetcher  # noqa: E402
from omnicorpus.images.phase import fetch_row, host_partition  # noqa: E402

# The shared sample set next to the checkout (found upwards, so a worktree nested one level deeper finds it too).
DEFAULT_SAMPLES = next((parent / "shared" / "samples" for parent in Path(__file__).resolve().parents
                        if (parent / "shared" / "samples").is_dir()), Path("../shared/samples"))
# Web-sized photos: 300-1024 px a side, 20-120 kB.
WEB_JPEGS = [
    "pillow/iptc.jpg", "pillow/exif_gps_typeerror.jpg", "pillow/sugarshack_bad_mpo_header.jpg",
    "pillow/junk_jpeg_header.jpg", "pillow/flower.jpg", "pillow/flower2.jpg", "pillow/exif-72dpi-int.jpg",
    "img2dataset/blur_test_files/resize_border.jpg", "img2dataset/blur_test_files/resize_center_crop.jpg",
    "img2dataset/blur_test_files/resize_keep_ratio.jpg", "img2dataset/resize_test_image/321_421.jpg",
    "img2dataset/resize_test_image/389_535.jpg", "img2dataset/resize_test_image/416_264.jpg",
    "img2dataset/resize_test_image/524_316.jpg",
]
HOSTS = 16
MAX_BYTES = 20 * 1024 * 1024


def load_jpegs(samples: Path) -> list[bytes]:
    return [(samples / "images" / name).read_bytes() for name in WEB_JPEGS]


# ---------------------------------------------------------------------------------------------------------
# decode


def naive_inspect(data: bytes) -> tuple[str, str, str]:
    """The peer: what one writes first (full decode, imagehash on the full image)."""
    import imagehash
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    return hashlib.sha256(data).hexdigest(), str(imagehash.phash(image)), str(imagehash.dhash(image))


def per_cpu_second(function, datas: list[bytes], minimum_s: float = 2.0) -> float:
    count, started = 0, time.process_time()
    while time.process_time() - started < minimum_s:
        for data in datas:
            function(data)
        count += len(datas)
    return count / (time.process_time() - started)


def bench_decode(samples: Path, rounds: int) -> None:
    from PIL import Image

    datas = load_jpegs(samples)
    sizes = [Image.open(io.BytesIO(d)).size for d in datas]
    config = ImagesConfig()
    assert all(inspect_image(d, config).status == "ok" for d in datas)
    print(f"{len(datas)} JPEGs, {statistics.mean(len(d) for d in datas) / 1024:.0f} kB and "
          f"{statistics.mean(w * h for w, h in sizes) / 1e6:.2f} Mpx on average")
    ours, peer, ratios = [], [], []
    for _ in range(rounds):
        a = per_cpu_second(lambda d: inspect_image(d, config), datas)
        b = per_cpu_second(naive_inspect, datas)
        ours.append(a)
        peer.append(b)
        ratios.append(a / b)
        print(f"  round: ours {a:7.0f} images/CPU-s   peer {b:6.0f}   ratio {a / b:4.1f}")
    print(f"decode+validate+hash+filter, images per CPU-second (median of {rounds}): ours {statistics.median(ours):.0f}"
          f" (min {min(ours):.0f}), peer full decode {statistics.median(peer):.0f}, "
          f"ratio {statistics.median(ratios):.1f}")


# ---------------------------------------------------------------------------------------------------------
# fetch


def serve(datas: list[bytes], ready) -> None:
    """The loopback server (own process): /img/<i>.jpg → datas[i % len]; robots.txt → 404."""
    from aiohttp import web

    async def image(request):
        index = int(request.match_info["index"])
        return web.Response(body=datas[index % len(datas)], content_type="image/jpeg")

    async def main():
        app = web.Application()
        app.router.add_get("/img/{index}.jpg", image)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        ports = []
        for host in range(1, HOSTS + 1):
            site = web.TCPSite(runner, f"127.0.0.{host}", 0, backlog=1024)
            await site.start()
            ports.append(site._server.sockets[0].getsockname()[1])
        ready.send(ports)
        await asyncio.Event().wait()

    asyncio.run(main())


def url_list(ports: list[int], count: int) -> list[str]:
    return [f"http://127.0.0.{i % HOSTS + 1}:{ports[i % HOSTS]}/img/{i}.jpg" for i in range(count)]


def fetch_config() -> ImagesConfig:
    return ImagesConfig(fetch_allow_networks=("127.0.0.0/8",), fetch_concurrency=64, fetch_per_host=4,
                        retries=0, total_timeout_s=30)


def run_asyncio(urls: list[str], decode: bool) -> tuple[int, float, float, float]:
    """Our fetcher in this process; returns (images ok, client CPU seconds, start, end)."""
    config = fetch_config()
    results = []
    transform = (lambda result: fetch_row(result, config)) if decode else None
    cpu, started = time.process_time(), time.time()
    asyncio.run(Fetcher(config).run(urls, results.append, transform))
    ok = sum(1 for r in results if (r["status"] if decode else r.status) == "ok")
    return ok, time.process_time() - cpu, started, time.time()


def run_threads(urls: list[str]) -> tuple[int, float]:
    """The peer: a thread per connection over urllib3, streaming with the same byte cap."""
    import urllib3

    pool = urllib3.PoolManager(num_pools=HOSTS * 2, maxsize=4, block=True, retries=False,
                               timeout=urllib3.Timeout(connect=10, read=10))

    def get(url: str) -> FetchResult:
        response = pool.request("GET", url, preload_content=False, headers={"User-Agent": "bench"})
        try:
            if not response.headers.get("Content-Type", "").startswith("image/"):
                return FetchResult(url, "bad_type")
            body = bytearray()
            for chunk in response.stream(64 * 1024):
                body += chunk
                if len(body) > MAX_BYTES:
                    return FetchResult(url, "too_large")
            return FetchResult(url, "ok", data=bytes(body))
        finally:
            response.release_conn()

    cpu, started = time.process_time(), time.time()
    with ThreadPoolExecutor(max_workers=64) as workers:
        results = list(workers.map(get, urls))
    return sum(r.status == "ok" for r in results), time.process_time() - cpu, started, time.time()


def _child(urls, decode, pipe):
    pipe.send(run_asyncio(urls, decode))


def run_two_processes(urls: list[str], decode: bool) -> tuple[int, float, float, float]:
    """Two fetch tasks, URLs split by host as the fetch phase does; timed from the first task's first request
    to the last task's end (process start-up and imports excluded, as a warm Ray worker has them done)."""
    context = multiprocessing.get_context("spawn")
    children = []
    for partition in range(2):
        mine = [u for u in urls if host_partition(u.split("/")[2].split(":")[0], 2) == partition]
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_child, args=(mine, decode, send))
        process.start()
        children.append((process, receive))
    ok = cpu = 0
    starts, ends = [], []
    for process, receive in children:
        child_ok, child_cpu, start, end = receive.recv()
        process.join()
        ok, cpu = ok + child_ok, cpu + child_cpu
        starts.append(start)
        ends.append(end)
    return ok, cpu, min(starts), max(ends)


def bench_fetch(samples: Path, rounds: int, count: int) -> None:
    datas = load_jpegs(samples)
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    server = context.Process(target=serve, args=(datas, send), daemon=True)
    server.start()
    ports = receive.recv()
    clients = {"asyncio": lambda urls: run_asyncio(urls, False), "threads": run_threads,
               "asyncio-2": lambda urls: run_two_processes(urls, False),
               "full-2": lambda urls: run_two_processes(urls, True)}
    rates: dict[str, list[float]] = {name: [] for name in clients}
    cpu_ms: dict[str, list[float]] = {name: [] for name in clients}
    ratios = []
    try:
        for round_index in range(rounds):
            for name, client in clients.items():
                urls = [f"{u}?r={round_index}" for u in url_list(ports, count)]
                ok, cpu, started, ended = client(urls)
                elapsed = ended - started
                if ok != count:
                    raise SystemExit(f"{name}: only {ok} of {count} images arrived")
                rates[name].append(count / elapsed)
                cpu_ms[name].append(cpu / count * 1000)
            ratios.append(rates["asyncio"][-1] / rates["threads"][-1])
            print("  round: " + "   ".join(f"{name} {rates[name][-1]:5.0f}/s" for name in clients))
    finally:
        server.kill()
    print(f"fetch from loopback, {count} images of {statistics.mean(len(d) for d in datas) / 1024:.0f} kB "
          f"over {HOSTS} hosts (median of {rounds}):")
    for name in clients:
        print(f"  {name:10} {statistics.median(rates[name]):6.0f} images/s   "
              f"client CPU {statistics.median(cpu_ms[name]):.2f} ms/image")
    print(f"  asyncio/threads ratio (one process each, round by round): {statistics.median(ratios):.2f}")


def main() -> None:
    warnings.simplefilter("ignore")  # malformed MPO headers in one sample; the peer would print it per decode
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("decode", "fetch"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--urls", type=int, default=3000)
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES)
    args = parser.parse_args()
    if args.part == "decode":
        bench_decode(args.samples, args.rounds)
    else:
        bench_fetch(args.samples, args.rounds, args.urls)


if __name__ == "__main__":
    main()
