"""Concurrent vs one-at-a-time image variations through the OpenAI plugin, plus kill-and-resume.

Against the local stand-in server (synthmed_openai.testing) at 0.5 s per request, like a
hosted images API that takes its time:
1. 100 variations with --concurrency 8 against --concurrency 1 (the one-by-one submission
   the retina study did by hand): prints the speed-up;
2. a run with --concurrency 8 interrupted with Ctrl-C (SIGINT) part-way, then resumed:
   prints how many tasks the server was asked for twice (should be 0), and the same after
   a hard kill (SIGKILL), where the answers in flight are lost.
Driven through synthmed.generate.variation.run_variations (no CLI needed).

    python benchmarks/bench_openai_concurrency.py [--quick] [--latency 0.5]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

API_KEY = "sk-benchmark-local-only"


def make_dataset(root: Path) -> Path:
    from synthmed.data.sample import write_sample_dataset

    return write_sample_dataset(root / "data", size=32, scale=0.05, seed=0)


def generate(data_path: Path, out: Path, base_url: str, *, images: int, concurrency: int, resume: bool = False,
             quiet: bool = True) -> dict:
    from synthmed.data import Dataset, DatasetWriter
    from synthmed.generate.variation import plan_variations, run_variations
    from synthmed.registry import get_entry

    data = Dataset.open(data_path)
    entry = get_entry("generator", "openai")
    generator = entry.factory(mode="variation", base_url=base_url)
    plan = plan_variations(data, per_image=1, seed=0, generator=entry.name)[:images]
    with DatasetWriter(out, classes=data.classes, command="bench", resumable=True, resume=resume,
                       overwrite=True) as writer:
        return run_variations(data, plan, writer, entry, generator, device="cpu", concurrency=concurrency,
                              allow_upload=True)


def child(args: argparse.Namespace) -> int:
    """One generation run in its own process, so the parent can interrupt or kill it."""
    try:
        generate(Path(args.data), Path(args.out), args.base_url, images=args.images, concurrency=8)
    except KeyboardInterrupt:
        return 130
    return 0


class ServerProcess:
    """The stand-in server in its own process, so its work does not compete with the client
    for this process's GIL (a hosted API's work happens elsewhere too)."""

    def __init__(self, latency: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "synthmed_openai.testing", "--api-key", API_KEY, "--latency", str(latency),
             "--lifetime", "1800", "--until-stdin-closes"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self.base_url = self.process.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            raise RuntimeError("the stand-in server did not start")

    def stats(self) -> dict:
        import json
        from urllib.request import urlopen

        with urlopen(self.base_url.removesuffix("/v1") + "/_stats", timeout=30) as response:
            return json.loads(response.read())

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def interrupted_then_resumed(server, data: Path, out: Path, images: int, sig: int, after: int) -> dict:
    env = {**os.environ, "OPENAI_API_KEY": API_KEY, "SYNTHMED_PLUGINS": "openai"}
    command = [sys.executable, __file__, "--child", "--data", str(data), "--out", str(out),
               "--base-url", server.base_url, "--images", str(images)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while server.stats()["served"] < after and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(sig)
    process.wait(timeout=120)
    served_before = server.stats()["served"]
    summary = generate(data, out, server.base_url, images=images, concurrency=8, resume=True)
    stats = server.stats()
    return {"served_before_kill": served_before, "resumed_with": summary["already_done"],
            "asked_twice": stats["asked_twice"], "images_served_twice": stats["served_twice"],
            "served": stats["served"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="24 variations instead of 100")
    parser.add_argument("--latency", type=float, default=0.5, help="seconds the server takes per request")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--images", type=int, default=100, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.exit(child(args))

    os.environ["OPENAI_API_KEY"] = API_KEY
    os.environ["SYNTHMED_PLUGINS"] = "openai"
    images = 24 if args.quick else 100
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = make_dataset(root)
        seconds = {}
        for concurrency in (1, 8):
            with ServerProcess(args.latency) as server:
                start = time.perf_counter()
                summary = generate(data, root / f"c{concurrency}", server.base_url, images=images,
                                   concurrency=concurrency)
                seconds[concurrency] = time.perf_counter() - start
                assert summary["written"] == images, summary
            print(f"--concurrency {concurrency}: {images} variations in {seconds[concurrency]:.1f} s "
                  f"({images / seconds[concurrency]:.2f} img/s)")
        print(f"speed-up of --concurrency 8 over --concurrency 1: {seconds[1] / seconds[8]:.1f}x")

        # Interrupt once about a third of the images are served.
        after = images // 3
        for name, sig in (("Ctrl-C (SIGINT)", signal.SIGINT), ("hard kill (SIGKILL)", signal.SIGKILL)):
            with ServerProcess(args.latency) as server:
                result = interrupted_then_resumed(server, data, root / f"kill-{sig}", images, sig, after)
            print(f"{name} after {after} images, then --resume: {result['served_before_kill']} images served before, "
                  f"{result['resumed_with']} kept, {result['asked_twice']} tasks asked twice, "
                  f"{result['images_served_twice']} images paid twice, {result['served']} served in all")


if __name__ == "__main__":
    main()
