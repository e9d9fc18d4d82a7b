"""Label spaces and documented label compositions shared by the model, pipeline and data loaders.

Import-light on purpose (no torch): data loaders and the JSON schema use these names too.
"""

from __future__ import annotations

#: GoEmotions (Demszky et al. 2020) label order, as in ``goemotions_en/labels.txt``.
GOEMOTIONS_LABELS: tuple[str, ...] = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity",
    "desire", "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear",
    "gratitude", "grief", "joy", "love", "nervousness", "optimism", "pride", "realization", "relief",
    "remorse", "sadness", "surprise", "neutral",
)  # fmt: skip

#: KOTE (Jeon et al. 2022) label order, as in the data README.
KOTE_LABELS: tuple[str, ...] = (
    "불평/불만", "환영/호의", "감동/감탄", "지긋지긋", "고마움", "슬픔", "화남/분노", "존경", "기대감",
    "우쭐댐/무시함", "안타까움/실망", "비장함", "의심/불신", "뿌듯함", "편안/쾌적", "신기함/관심", "아껴주는",
    "부끄러움", "공포/무서움", "절망", "한심함", "역겨움/징그러움", "짜증", "어이없음", "없음", "패배/자기혐오",
    "귀찮음", "힘듦/지침", "즐거움/신남", "깨달음", "죄책감", "증오/혐오", "흐뭇함(귀여움/예쁨)", "당황/난처",
    "경악", "부담/안_내킴", "서러움", "재미없음", "불쌍함/연민", "놀람", "행복", "불안/걱정", "기쁨", "안심/신뢰",
)  # fmt: skip

#: GoEmotions' official Ekman grouping of the 28 labels (``ekman_mapping.json`` in the GoEmotions
#: repository) plus ``neutral``. ``emotion.core`` is derived from these groups (see ``CORE_FORMULA``).
EKMAN_GROUPS: dict[str, tuple[str, ...]] = {
    "anger": ("anger", "annoyance", "disapproval"),
    "disgust": ("disgust",),
    "fear": ("fear", "nervousness"),
    "joy": (
        "joy", "amusement", "approval", "excitement", "gratitude", "love", "optimism", "relief",
        "pride", "admiration", "desire", "caring",
    ),
    "sadness": ("sadness", "disappointment", "embarrassment", "grief", "remorse"),
    "surprise": ("surprise", "realization", "confusion", "curiosity"),
    "neutral": ("neutral",),
}  # fmt: skip
CORE_LABELS: tuple[str, ...] = tuple(EKMAN_GROUPS)
CORE_FORMULA = "p(group) = max over the group's GoEmotions labels of p(label)"

#: GoEmotions' official sentiment grouping (``sentiment_mapping.json``); neutral is its own group.
SENTIMENT_GROUPS: dict[str, tuple[str, ...]] = {
    "positive": (
        "admiration", "amusement", "approval", "caring", "desire", "excitement", "gratitude", "joy",
        "love", "optimism", "pride", "relief",
    ),
    "negative": (
        "anger", "annoyance", "disappointment", "disapproval", "disgust", "embarrassment", "fear",
        "grief", "nervousness", "remorse", "sadness",
    ),
    "ambiguous": ("confusion", "curiosity", "realization", "surprise"),
    "neutral": ("neutral",),
}  # fmt: skip

#: Korean cultural emotions as documented compositions of two KOTE components each:
#: p(emotion) = sqrt(max_{a in A} p(a) * max_{b in B} p(b)) -- the geometric mean is high only when both
#: components are present (an "and"), and stays in [0, 1].
CULTURAL_COMPOSITIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # 정 (jeong): affection + loyalty
    "jeong": (("아껴주는", "환영/호의", "흐뭇함(귀여움/예쁨)"), ("안심/신뢰", "존경", "고마움")),
    # 한 (han): sorrow + resentment
    "han": (("서러움", "슬픔", "절망"), ("화남/분노", "증오/혐오", "불평/불만")),
    # 체면 (chemyeon): dignity + social face
    "chemyeon": (("비장함", "우쭐댐/무시함", "뿌듯함"), ("부끄러움", "당황/난처")),
}
CULTURAL_LABELS: tuple[str, ...] = tuple(CULTURAL_COMPOSITIONS)

#: The four ETHICS frameworks of ``bentham.acceptability`` (KoSBi maps onto commonsense).
ACCEPTABILITY_FRAMEWORKS: tuple[str, ...] = ("commonsense", "justice", "deontology", "virtue")

#: Bentham's felicific-calculus elements plus the three social extensions of the design.
BENTHAM_ELEMENTS: tuple[str, ...] = (
    "intensity", "duration", "certainty", "propinquity", "fecundity", "purity", "extent",
    "external_cost", "redistribution_effect", "self_damage",
)  # fmt: skip
#: Sign of each element in the hedonic sum: costs count against utility.
BENTHAM_SIGNS: tuple[float, ...] = (1, 1, 1, 1, 1, 1, 1, -1, 1, -1)

#: SURD share names, in the order the neural head predicts them.
SURD_SHARES: tuple[str, ...] = ("redundant", "unique", "synergistic", "leak")


def check_unique(name: str, labels: tuple[str, ...] | list[str]) -> None:
    """Raise ``ValueError`` naming ``name`` when a label list is empty or has duplicates."""
    if len(labels) == 0:
        raise ValueError(f"`{name}` must not be empty")
    seen: set[str] = set()
    dupes = [lab for lab in labels if lab in seen or seen.add(lab)]
    if dupes:
        raise ValueError(f"`{name}` has duplicate labels: {sorted(set(dupes))}")
