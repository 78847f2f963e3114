"""Text filters: language ID, Gopher/C4 quality, paragraph rules, document rules, a trainable classifier.

They run in two places (DESIGN §4). The preliminary filters (document language, Gopher quality and repetition,
C4) run in the `extract` phase right after extraction, so dedup and image work only see what survives them. The
detailed filters (paragraph language, paragraph rules, document rules after removals, the classifier score) run
in the `detail` phase, the last one before writing. `[filter.<stage>]` sections configure them; see
docs/filters.md for every rule, its default and its source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from omnicorpus.filters.classifier import ClassifierConfig, QualityClassifier
from omnicorpus.filters.document_rules import DocumentRules, DocumentRulesConfig
from omnicorpus.filters.language import (LanguageConfig, LanguageFilter, ModelNotFound, ParagraphLanguageConfig,
                                         ParagraphLanguageFilter, bundled_model_path)
from omnicorpus.filters.paragraphs import ParagraphRules, ParagraphRulesConfig
from omnicorpus.filters.quality import (C4Config, C4Filter, GopherQualityConfig, GopherQualityFilter,
                                        GopherRepetitionConfig, GopherRepetitionFilter)
from omnicorpus.stage import Stage


@dataclass(frozen=True, kw_only=True)
class TextFiltersConfig:
    """The `[filter.*]` sections of a pipeline file; `[filter] enabled = false` switches every text filter off."""

    enabled: bool = True
    language: LanguageConfig = field(default_factory=LanguageConfig)
    gopher_quality: GopherQualityConfig = field(default_factory=GopherQualityConfig)
    gopher_repetition: GopherRepetitionConfig = field(default_factory=GopherRepetitionConfig)
    c4: C4Config = field(default_factory=C4Config)
    paragraph_language: ParagraphLanguageConfig = field(default_factory=ParagraphLanguageConfig)
    paragraphs: ParagraphRulesConfig = field(default_factory=ParagraphRulesConfig)
    document: DocumentRulesConfig = field(default_factory=DocumentRulesConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)

    def __post_init__(self):
        # A missing LID model is a start-up error, not an error row for every document.
        uses_model = self.language.enabled or self.paragraph_language.enabled
        if self.enabled and uses_model and self.language.model_path is None:
            try:
                bundled_model_path()
            except ModelNotFound as exc:
                raise ValueError(str(exc)) from None


def _preliminary(filters: TextFiltersConfig) -> list[tuple[type[Stage], object]]:
    if not filters.enabled:
        return []
    return [(stage, config) for stage, config in (
        (LanguageFilter, filters.language),
        (GopherQualityFilter, filters.gopher_quality),
        (GopherRepetitionFilter, filters.gopher_repetition),
        (C4Filter, filters.c4),
    ) if config.enabled]


def _detail(filters: TextFiltersConfig) -> list[tuple[type[Stage], object]]:
    if not filters.enabled:
        return []
    stages = [(stage, config) for stage, config in (
        (ParagraphLanguageFilter, filters.paragraph_language),
        (ParagraphRules, filters.paragraphs),
        (DocumentRules, filters.document),
    ) if config.enabled]
    if filters.classifier.in_use:
        stages.append((QualityClassifier, filters.classifier))
    return stages


def preliminary_stage_classes(config) -> list[type[Stage]]:
    return [stage for stage, _ in _preliminary(config.filter)]


def detail_stage_classes(config) -> list[type[Stage]]:
    return [stage for stage, _ in _detail(config.filter)]


def preliminary_stages(config) -> list[Stage]:
    """The filters of the extract phase, in order, for a `PipelineConfig`."""
    return [stage(stage_config) for stage, stage_config in _preliminary(config.filter)]


def detail_stages(config) -> list[Stage]:
    """The filters of the detail phase, in order, for a `PipelineConfig`."""
    stages = []
    for stage, stage_config in _detail(config.filter):
        if stage is ParagraphLanguageFilter:
            stages.append(stage(stage_config, model_path=config.filter.language.model_path,
                                max_chars=config.filter.language.max_chars))
        else:
            stages.append(stage(stage_config))
    return stages


def detail_enabled(config) -> bool:
    return bool(_detail(config.filter))
