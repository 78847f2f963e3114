"""Check every image of the shared sample set against its recorded facts (exploratory; the tests hold a subset).

    python bench/image_samples.py [--samples ../shared/samples] [--min-side 150]

For each file of samples/images/expected.json: our status must be the one its facts call for under the
configured rules (undecodable → decode_error, the 65535x66601 GIF → too_many_pixels, otherwise the size, aspect
and format rules), and decodable files must report the recorded width, height and format. Members of each
near-duplicate family must be within 10 bits of each other in our dHash (the sample set's own criterion).
Prints one line per file and exits 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omnicorpus.images.config import ImagesConfig  # noqa: E402
from omnicorpus.images.decode import dimension_verdict, inspect_image  # noqa: E402

DEFAULT_SAMPLES = next((parent / "shared" / "samples" for parent in Path(__file__).resolve().parents
                        if (parent / "shared" / "samples").is_dir()), Path("../shared/samples"))


def status_called_for(facts: dict, config: ImagesConfig) -> str:
    if not facts["decodes"]:
        bomb = facts.get("error", "").startswith("DecompressionBombError")
        return "too_many_pixels" if bomb else "decode_error"
    if facts["format"].lower() not in config.formats:
        return "bad_format"
    return dimension_verdict(facts["width"], facts["height"], config) or "ok"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES)
    parser.add_argument("--min-side", type=int, default=150)
    args = parser.parse_args()
    import imagehash

    folder = args.samples / "images"
    expected = json.loads((folder / "expected.json").read_text())
    config = ImagesConfig(min_side_px=args.min_side)
    mismatches, statuses = [], Counter()
    for name, facts in sorted(expected["files"].items()):
        result = inspect_image((folder / name).read_bytes(), config)
        wanted = status_called_for(facts, config)
        problems = []
        if result.status != wanted:
            problems.append(f"status {result.status}, expected {wanted}")
        if facts["decodes"] and (result.width, result.height, result.format) != (
                facts["width"], facts["height"], facts["format"].lower()):
            problems.append(f"read {result.width}x{result.height} {result.format}")
        statuses[result.status] += 1
        mismatches += [f"{name}: {p}" for p in problems]
        print(f"{'FAIL' if problems else 'ok  '} {result.status:16} {name}  {result.error or ''}"[:140])
    lenient = ImagesConfig(min_side_px=1, max_aspect_ratio=1000)
    for family, members in expected["families"].items():
        hashes = [imagehash.hex_to_hash(inspect_image((folder / m).read_bytes(), lenient).dhash) for m in members]
        spread = max(a - b for a in hashes for b in hashes)
        print(f"{'ok  ' if spread <= 10 else 'FAIL'} family {family}: {len(members)} files, dHash spread {spread} bits")
        if spread > 10:
            mismatches.append(f"family {family}: dHash spread {spread} > 10 bits")
    print(f"\n{len(expected['files'])} files: " + ", ".join(f"{s} {n}" for s, n in statuses.most_common()))
    for mismatch in mismatches:
        print(f"MISMATCH {mismatch}")
    print("every file has the outcome its facts call for" if not mismatches else f"{len(mismatches)} mismatches")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
