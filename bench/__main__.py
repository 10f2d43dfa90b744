"""`make bench`: every benchmark in turn, each printing its own figures."""
import importlib
import sys

BENCHES = ["bench.gateway", "bench.neo_storage", "bench.neo", "bench.files", "bench.sandbox", "bench.acl", "bench.selections"]


def main() -> int:
    known = {name.split(".")[-1] for name in BENCHES}
    selected = [arg for arg in sys.argv[1:] if arg.split(".")[-1] in known] or BENCHES  # the rest: options
    for name in selected:
        module = importlib.import_module(name if name.startswith("bench.") else f"bench.{name}")
        print(f"\n=== {module.__name__} ===", flush=True)
        module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
