"""`make bench`: every benchmark in turn, each printing its own figures."""
import importlib
import sys

BENCHES = ["bench.gateway", "bench.neo_storage", "bench.neo", "bench.files"]


def main() -> int:
    selected = sys.argv[1:] or BENCHES
    for name in selected:
        module = importlib.import_module(name if name.startswith("bench.") else f"bench.{name}")
        print(f"\n=== {module.__name__} ===", flush=True)
        module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
