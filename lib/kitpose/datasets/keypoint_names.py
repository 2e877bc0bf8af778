"""What a keypoint name says: its side and its body-part words, whatever the spelling.

Labelling tools and datasets spell one keypoint many ways: AP-10K's ``L_F_Paw`` and
``Root of tail``, DeepLabCut's ``leftear`` and ``tailbase``, SLEAP's ``wingL`` and
``forelegL4``. `keypoint_name_key` reduces a name to (side, words), so that
``Root of tail`` = ``tailbase`` = ``tail_base`` and ``Nose`` = ``snout``, and
`match_keypoints` pairs two keypoint lists by it (used to carry a trained model's
keypoint rows over to a dataset with other keypoints).
"""
import re
from typing import NamedTuple

LEFT, RIGHT, CENTRE = "left", "right", ""
_SIDE_TOKENS = {"l": LEFT, "left": LEFT, "r": RIGHT, "right": RIGHT}
# one body-part word per meaning; single letters are AP-10K's front/back abbreviations (L_F_Paw)
_SYNONYMS = {"snout": "nose", "muzzle": "nose", "root": "base", "f": "front", "fore": "front",
             "b": "back", "hind": "back", "rear": "back"}
_COMPOUNDS = {"tailbase": ("tail", "base"), "tailroot": ("tail", "base"), "earbase": ("ear", "base"),
              "tailtip": ("tail", "tip"), "tailend": ("tail", "tip"), "forepaw": ("front", "paw"),
              "hindpaw": ("back", "paw")}
_FILLER = {"of", "the"}
# word boundaries inside a name: camelCase (wingL -> wing L), acronym+word (LEye -> L Eye), letter+digit
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")
_SEPARATORS = re.compile(r"[^a-z0-9]+")


class NameKey(NamedTuple):
    side: str             # 'left', 'right' or '' (no side)
    words: frozenset      # body-part words, synonyms folded ('snout' -> 'nose')


def keypoint_name_key(name):
    """(side, words) of a keypoint name: 'L_F_Paw' -> ('left', {'front', 'paw'}), 'snout' -> ('', {'nose'}).

    A name with two sides ('left_right_x') keeps the first one found."""
    side, words = CENTRE, []
    for token in _SEPARATORS.split(_CAMEL.sub(" ", str(name)).lower()):
        if not token or token in _FILLER:
            continue
        if token in _SIDE_TOKENS:
            side = side or _SIDE_TOKENS[token]
            continue
        for side_word in ("left", "right"):   # leftear, earleft
            if token != side_word and (token.startswith(side_word) or token.endswith(side_word)):
                side = side or _SIDE_TOKENS[side_word]
                token = token[len(side_word):] if token.startswith(side_word) else token[:-len(side_word)]
        parts = _COMPOUNDS.get(token, (token,))
        words.extend(_SYNONYMS.get(part, part) for part in parts)
    return NameKey(side, frozenset(words))


def match_keypoints(source_names, target_names):
    """[(source index, target index)] of keypoints whose name keys are equal, where each key is
    unique on both sides (an ambiguous name is left out rather than guessed)."""
    def unique_keys(names):
        keys = [keypoint_name_key(name) for name in names]
        return {key: index for index, key in enumerate(keys) if keys.count(key) == 1 and key.words}
    source, target = unique_keys(source_names), unique_keys(target_names)
    return sorted((source[key], target[key]) for key in source.keys() & target.keys())


def parse_keypoint_map(entries, source_names, target_names):
    """MODEL.INIT_KEYPOINT_MAP entries -> [(source index, target index)].

    Each entry is 'source:target', each side a keypoint name or a 0-based index; source names need
    `source_names` (None when the checkpoint's keypoints are unnamed). ['none'] -> []. Errors name
    the entry and list the valid names."""
    if [str(entry).strip().lower() for entry in entries] == ["none"]:
        return []

    def index_of(text, names, count, which):
        if text.isdigit() and (names is None or text not in names):
            index = int(text)
            if count is not None and index >= count:
                raise ValueError(f"MODEL.INIT_KEYPOINT_MAP: {which} index {index} is outside 0..{count - 1}")
            return index
        if names is None:
            raise ValueError(f"MODEL.INIT_KEYPOINT_MAP: {which} keypoint {text!r} is a name, but the checkpoint's "
                             f"keypoints are unnamed: set MODEL.INIT_META (a built-in metainfo name or JSON) or "
                             f"use 0-based indices")
        if text not in names:
            raise ValueError(f"MODEL.INIT_KEYPOINT_MAP: unknown {which} keypoint {text!r}; {which} keypoints: "
                             f"{', '.join(names)}")
        return names.index(text)

    pairs, seen_targets = [], set()
    for entry in entries:
        ends = [end.strip() for end in str(entry).rsplit(":", 1)]
        if len(ends) != 2 or not all(ends):
            raise ValueError(f"MODEL.INIT_KEYPOINT_MAP entry {entry!r}: expected 'source:target'")
        source = index_of(ends[0], source_names, None if source_names is None else len(source_names), "source")
        target = index_of(ends[1], target_names, len(target_names), "target")
        if target in seen_targets:
            raise ValueError(f"MODEL.INIT_KEYPOINT_MAP: target keypoint {ends[1]!r} is given twice")
        seen_targets.add(target)
        pairs.append((source, target))
    return pairs


def mirror_pairs(names):
    """[[i, j], ...] (i < j) of keypoints whose names differ only by side: leftear/rightear, L_Eye/R_Eye,
    paw_left/paw_right, wingL/wingR, forelegL4/forelegR4. A name whose mirror is ambiguous is left out."""
    keys = [keypoint_name_key(name) for name in names]
    pairs = []
    for i, key in enumerate(keys):
        if key.side != LEFT or not key.words:
            continue
        mirrors = [j for j, other in enumerate(keys) if other == NameKey(RIGHT, key.words)]
        if len(mirrors) == 1 and keys.count(key) == 1:
            pairs.append(sorted([i, mirrors[0]]))
    return sorted(pairs)
