"""The `[dedup]` and `[dedup.near]` sections of a pipeline config."""

from __future__ import annotations

from dataclasses import dataclass, field

from omnicorpus.stage import StageConfig

KEEP_POLICIES = ("newest", "longest", "most_images", "quality")


@dataclass(frozen=True, kw_only=True)
class NearDuplicateConfig:
    """MinHash-LSH near-duplicates over word n-grams of the normalised text."""

    enabled: bool = True
    # datatrove's MinHash defaults (anchors §4.2): word 5-grams, 112 permutations, seed 1; OBELICS also
    # shingles 5-grams (anchors §2.2 row 3).
    ngram: int = 5
    num_perm: int = 112
    seed: int = 1
    # OmniCorpus dedups at Jaccard 0.8 (anchors §1.2 stage 3).
    threshold: float = 0.8
    # 0 x 0: choose from the threshold (`minhash.choose_layout`: 14 x 8 for 0.8 and 112 permutations, which
    # linked all real near-duplicate pairs at Jaccard 0.8-0.9 where datasketch's 9 x 12 linked 80 %;
    # docs/dedup.md).
    bands: int = 0
    rows: int = 0

    def __post_init__(self):
        if self.ngram < 1:
            raise ValueError(f"dedup.near.ngram must be >= 1, got {self.ngram}")
        if not 1 <= self.num_perm <= 1024:
            raise ValueError(f"dedup.near.num_perm must be in 1..1024, got {self.num_perm}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"dedup.near.threshold must be in (0, 1), got {self.threshold}")
        if (self.bands == 0) != (self.rows == 0) or self.bands < 0 or self.rows < 0:
            raise ValueError(f"dedup.near.bands and rows are both 0 (chosen from the threshold) or both > 0, "
                             f"got {self.bands} x {self.rows}")
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"dedup.near.bands x rows = {self.bands * self.rows} needs more than "
                             f"num_perm = {self.num_perm} permutations")

    @property
    def layout(self) -> tuple[int, int]:
        """(bands, rows) in use."""
        if self.bands:
            return self.bands, self.rows
        from omnicorpus.dedup.minhash import choose_layout

        return choose_layout(self.threshold, self.num_perm)


@dataclass(frozen=True, kw_only=True)
class DedupConfig(StageConfig):
    """Which kinds of duplicates to find across all inputs of a run, and which copy to keep."""

    # Exact URL dedup on the normalised URL (OBELICS keeps the newest capture of a URL, anchors §2.2 row 14).
    url: bool = True
    # Exact dedup on a hash of the normalised text.
    content: bool = True
    # Documents whose sets of image URLs are identical (OBELICS, anchors §2.2 row 17) ...
    image_set: bool = True
    # ... with at least this many images. OBELICS ran this after dropping images seen more than 10 times;
    # here it runs before, when one site logo or banner is often a page's only image, so a set of one image
    # would merge unrelated pages of a site.
    image_set_min_images: int = 2
    near: NearDuplicateConfig = field(default_factory=NearDuplicateConfig)
    # The copy a cluster of duplicates keeps. OmniCorpus keeps the latest (anchors §1.2 stage 3), OBELICS the
    # newest (§2.2 rows 14, 17). Ties, and the "quality" policy on documents without a score, fall back to
    # newest, then to the smallest document id.
    keep: str = "newest"
    # The `signals` field "quality" reads (a score where higher is better).
    quality_field: str = "quality_score"
    # Rows of key and edge tables per group-by partition: what one task of the cluster step holds in memory
    # (about 100 bytes a row), whatever the size of the corpus.
    partition_rows: int = 1_000_000

    def __post_init__(self):
        if self.keep not in KEEP_POLICIES:
            raise ValueError(f"dedup.keep must be one of {KEEP_POLICIES}, got {self.keep!r}")
        if self.image_set_min_images < 1:
            raise ValueError(f"dedup.image_set_min_images must be >= 1, got {self.image_set_min_images}")
        if self.partition_rows < 1000:
            raise ValueError(f"dedup.partition_rows must be >= 1000, got {self.partition_rows}")

    @property
    def any_kind(self) -> bool:
        return self.enabled and (self.url or self.content or self.image_set or self.near.enabled)
