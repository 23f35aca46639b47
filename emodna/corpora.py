"""Read emotional-speech corpora from disk: audio files -> (path, emotion, speaker, gender).

Each corpus encodes its labels in its file and folder names. This module has one table
of codes and one small parse function per corpus; :func:`read_corpus` walks a corpus
folder, parses every audio file with that function, and keeps the files it cannot
parse in :attr:`Corpus.unparsed` with the reason, so a user can see what was left out.

A *corpora folder* holds one subfolder per corpus, named after it (case-insensitive):
``DATA/EMODB``, ``DATA/casia``, ``DATA/CREMA-D`` ... (:func:`find_corpora`). A subfolder
that is no known corpus is read as a manifest corpus (it holds ``manifest.csv``) or as a
folder-per-emotion corpus (``emodna.custom``), under its folder name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import soundfile

from emodna.errors import CorpusError
from emodna.labels import normalize_emotion

# Every extension soundfile can read. RAW is left out: it needs its format given by hand.
AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    "." + fmt.lower() for fmt in soundfile.available_formats() if fmt != "RAW"
) | {".aif", ".wave"}


@dataclass(frozen=True)
class Utterance:
    path: Path
    emotion: str  # a name from labels.EMOTIONS
    speaker: str
    gender: str | None  # "female", "male", or None where the corpus does not tell


@dataclass
class Corpus:
    name: str  # canonical name, a key of READERS
    root: Path
    utterances: list[Utterance] = field(default_factory=list)  # sorted by path
    unparsed: list[tuple[Path, str]] = field(default_factory=list)  # (audio file, reason)


class _Unparsed(Exception):
    """Raised by a parse function: this audio file's name does not follow the corpus's rules."""


# ---------------------------------------------------------------------------------------
# Walking a corpus folder
# ---------------------------------------------------------------------------------------


def _audio_files(root: Path) -> list[Path]:
    """All audio files under root, sorted; hidden files and folders (".DS_Store",
    macOS "._x.wav" resource forks) are skipped."""
    files = []
    for folder, subfolders, names in os.walk(root, followlinks=True):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        for name in names:
            if not name.startswith(".") and Path(name).suffix.lower() in AUDIO_EXTENSIONS:
                files.append(Path(folder) / name)
    return sorted(files)


def _collect(name: str, root: Path, parse: Callable[[Path], Utterance | None]) -> Corpus:
    """Parse every audio file under root. ``parse`` returns an Utterance, returns None for
    a file that is deliberately left out, or raises _Unparsed with the reason."""
    corpus = Corpus(name=name, root=root)
    for path in _audio_files(root):
        try:
            utterance = parse(path)
        except _Unparsed as reason:
            corpus.unparsed.append((path, str(reason)))
            continue
        if utterance is not None:
            corpus.utterances.append(utterance)
    return corpus


def _lookup(table: dict[str, str], code: str, what: str) -> str:
    """table[code], or _Unparsed naming the code and the codes the corpus uses."""
    if code not in table:
        raise _Unparsed(f"{what} {code!r} is not one of {', '.join(table)}")
    return normalize_emotion(table[code])


# ---------------------------------------------------------------------------------------
# EMODB: wav/03a01Fa.wav -- speaker 03, text a01, emotion F, version a
# ---------------------------------------------------------------------------------------

EMODB_EMOTIONS = {
    "W": "anger",  # Wut
    "L": "boredom",  # Langeweile
    "E": "disgust",  # Ekel
    "A": "fear",  # Angst
    "F": "happiness",  # Freude
    "T": "sadness",  # Trauer
    "N": "neutral",
}
EMODB_GENDERS = {
    "03": "male",
    "08": "female",
    "09": "female",
    "10": "male",
    "11": "male",
    "12": "male",
    "13": "female",
    "14": "female",
    "15": "male",
    "16": "female",
}
EMODB_NAME = re.compile(r"^(\d\d)[ab]\d\d([A-Z])[a-z]$")


def _parse_emodb(path: Path) -> Utterance:
    match = EMODB_NAME.match(path.stem)
    if not match:
        raise _Unparsed("name is not like 03a01Fa (speaker, text, emotion letter, version)")
    speaker, code = match.groups()
    emotion = _lookup(EMODB_EMOTIONS, code, "emotion letter")
    return Utterance(path, emotion, speaker, EMODB_GENDERS.get(speaker))


def read_emodb(root: Path) -> Corpus:
    return _collect("EMODB", root, _parse_emodb)


# ---------------------------------------------------------------------------------------
# CASIA: <speaker>/<emotion>/201.wav -- labels are folder names
# ---------------------------------------------------------------------------------------

CASIA_EMOTIONS = {
    "angry": "anger",
    "fear": "fear",
    "happy": "happiness",
    "neutral": "neutral",
    "sad": "sadness",
    "surprise": "surprise",
}
# Keys lower-case. liuchanhg is female: her median F0 (~225 Hz) is like zhaoquanyin's
# (~250 Hz), not like the two male speakers' (~135 Hz); CASIA has 2 female, 2 male speakers.
CASIA_GENDERS = {
    "liuchanhg": "female",
    "wangzhe": "male",
    "zhaoquanyin": "female",
    "zhaozuoxiang": "male",
}


def read_casia(root: Path) -> Corpus:
    def parse(path: Path) -> Utterance:
        folders = path.relative_to(root).parts[:-1]
        if len(folders) < 2:
            raise _Unparsed("not inside a <speaker>/<emotion>/ folder")
        speaker, emotion_folder = folders[-2], folders[-1]
        emotion = _lookup(CASIA_EMOTIONS, emotion_folder.lower(), "emotion folder")
        return Utterance(path, emotion, speaker, CASIA_GENDERS.get(speaker.lower()))

    return _collect("CASIA", root, parse)


# ---------------------------------------------------------------------------------------
# EMOVO: f1/dis-f1-b1.wav -- emotion, speaker (f/m + number), sentence
# ---------------------------------------------------------------------------------------

EMOVO_EMOTIONS = {
    "dis": "disgust",  # disgusto
    "gio": "happiness",  # gioia
    "neu": "neutral",
    "pau": "fear",  # paura
    "rab": "anger",  # rabbia
    "sor": "surprise",  # sorpresa
    "tri": "sadness",  # tristezza
}
EMOVO_NAME = re.compile(r"^([a-z]+)-([fm]\d+)-(\w+)$")


def _parse_emovo(path: Path) -> Utterance:
    match = EMOVO_NAME.match(path.stem.lower())
    if not match:
        raise _Unparsed("name is not like dis-f1-b1 (emotion-speaker-sentence)")
    code, speaker, _sentence = match.groups()
    emotion = _lookup(EMOVO_EMOTIONS, code, "emotion prefix")
    gender = "female" if speaker.startswith("f") else "male"
    return Utterance(path, emotion, speaker, gender)


def read_emovo(root: Path) -> Corpus:
    return _collect("EMOVO", root, _parse_emovo)


# ---------------------------------------------------------------------------------------
# RAVDESS: Actor_01/03-01-01-01-01-01-01.wav --
#   modality-channel-emotion-intensity-statement-repetition-actor; channel 01 speech, 02 song
# ---------------------------------------------------------------------------------------

RAVDESS_EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happiness",
    "04": "sadness",
    "05": "anger",
    "06": "fear",
    "07": "disgust",
    "08": "surprise",
}
RAVDESS_NAME = re.compile(r"^\d\d-(\d\d)-(\d\d)-\d\d-\d\d-\d\d-(\d\d)$")


def _parse_ravdess(path: Path) -> Utterance:
    match = RAVDESS_NAME.match(path.stem)
    if not match:
        raise _Unparsed("name is not like 03-01-01-01-01-01-01 (seven 2-digit fields)")
    channel, code, actor = match.groups()
    if channel != "01":
        raise _Unparsed(f"vocal channel {channel} is song, not speech (01)")
    emotion = _lookup(RAVDESS_EMOTIONS, code, "emotion field")
    gender = "male" if int(actor) % 2 == 1 else "female"
    return Utterance(path, emotion, actor, gender)


def read_ravdess(root: Path) -> Corpus:
    return _collect("RAVDESS", root, _parse_ravdess)


# ---------------------------------------------------------------------------------------
# SAVEE: DC/a01.wav, AudioData/DC/a01.wav or DC_a01.wav -- speaker, emotion prefix, number
# ---------------------------------------------------------------------------------------

SAVEE_EMOTIONS = {
    "a": "anger",
    "d": "disgust",
    "f": "fear",
    "h": "happiness",
    "n": "neutral",
    "sa": "sadness",
    "su": "surprise",
}
SAVEE_SPEAKERS = ("DC", "JE", "JK", "KL")  # four male speakers
SAVEE_CODE = re.compile(r"^([a-z]+)(\d+)$")


def _parse_savee(path: Path) -> Utterance:
    if "_" in path.stem:  # DC_a01
        speaker, code = path.stem.split("_", 1)
    else:  # DC/a01
        speaker, code = path.parent.name, path.stem
    speaker = speaker.upper()
    if speaker not in SAVEE_SPEAKERS:
        raise _Unparsed(
            f"speaker {speaker!r} is not one of {', '.join(SAVEE_SPEAKERS)} "
            "(expected DC/a01 or DC_a01)"
        )
    match = SAVEE_CODE.match(code.lower())
    if not match:
        raise _Unparsed(f"{code!r} is not an emotion prefix and a number, like a01 or sa01")
    emotion = _lookup(SAVEE_EMOTIONS, match.group(1), "emotion prefix")
    return Utterance(path, emotion, speaker, "male")


def read_savee(root: Path) -> Corpus:
    return _collect("SAVEE", root, _parse_savee)


# ---------------------------------------------------------------------------------------
# IEMOCAP: SessionN/sentences/wav/<dialog>/<utterance>.wav, labelled by the lines
#   "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]"
# of SessionN/dialog/EmoEvaluation/<dialog>.txt (the consensus label of each utterance).
# ---------------------------------------------------------------------------------------

IEMOCAP_EMOTIONS = {
    "ang": "anger",
    "hap": "happiness",
    "exc": "happiness",  # excitement, merged with happiness as is usual
    "sad": "sadness",
    "neu": "neutral",
    "fea": "fear",
    "sur": "surprise",
    "dis": "disgust",
}
IEMOCAP_LEFT_OUT = ("xxx", "oth", "fru")  # no agreement, other, frustration (not in EMOTIONS)
IEMOCAP_LINE = re.compile(r"^\[[^\]]*\]\s+(\S+)\s+(\S+)\s+\[")


def _iemocap_labels(root: Path) -> tuple[dict[str, tuple[str, Path]], set[str]]:
    """{utterance name: (label code, txt file)} from every EmoEvaluation/*.txt under root,
    and the names of the dialogs those files describe."""
    labels: dict[str, tuple[str, Path]] = {}
    dialogs: set[str] = set()
    for folder, subfolders, _names in os.walk(root, followlinks=True):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        if Path(folder).name != "EmoEvaluation":
            continue
        for txt in sorted(Path(folder).glob("*.txt")):
            if txt.name.startswith("."):
                continue
            dialogs.add(txt.stem)
            for line in txt.read_text(encoding="utf-8", errors="replace").splitlines():
                match = IEMOCAP_LINE.match(line)
                if match:
                    labels[match.group(1)] = (match.group(2).lower(), txt)
    return labels, dialogs


def read_iemocap(root: Path) -> Corpus:
    labels, dialogs = _iemocap_labels(root)

    def parse(path: Path) -> Utterance | None:
        name = path.stem
        if name in dialogs:  # dialog/wav/<dialog>.wav: a whole dialog, not one utterance
            return None
        if name not in labels:
            raise _Unparsed(f"no label for {name!r} in any EmoEvaluation/*.txt")
        code, txt = labels[name]
        if code in IEMOCAP_LEFT_OUT:
            return None
        if code not in IEMOCAP_EMOTIONS:
            raise _Unparsed(f"label {code!r} in {txt} is not one of {', '.join(IEMOCAP_EMOTIONS)}")
        session, last = name.split("_")[0], name.split("_")[-1]  # Ses01F, F000
        if not re.match(r"^Ses\d\d[FM]$", session) or last[:1] not in ("F", "M"):
            raise _Unparsed("name is not like Ses01F_impro01_F000")
        speaker = session[:-1] + last[0]  # the session and the speaker's gender letter
        gender = "female" if last[0] == "F" else "male"
        return Utterance(path, normalize_emotion(IEMOCAP_EMOTIONS[code]), speaker, gender)

    return _collect("IEMOCAP", root, parse)


# ---------------------------------------------------------------------------------------
# TESS: OAF_angry/OAF_back_angry.wav -- speaker, word, emotion
# ---------------------------------------------------------------------------------------

TESS_EMOTIONS = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happiness",
    "neutral": "neutral",
    "ps": "surprise",  # pleasant surprise
    "sad": "sadness",
}
TESS_SPEAKERS = ("OAF", "YAF")  # older and younger actress


def _parse_tess(path: Path) -> Utterance:
    fields = path.stem.split("_")
    if len(fields) < 3:
        raise _Unparsed("name is not like OAF_back_angry (speaker_word_emotion)")
    speaker, code = fields[0].upper(), fields[-1].lower()
    if speaker not in TESS_SPEAKERS:
        raise _Unparsed(f"speaker {speaker!r} is not one of {', '.join(TESS_SPEAKERS)}")
    emotion = _lookup(TESS_EMOTIONS, code, "emotion")
    return Utterance(path, emotion, speaker, "female")


def read_tess(root: Path) -> Corpus:
    return _collect("TESS", root, _parse_tess)


# ---------------------------------------------------------------------------------------
# CREMA-D: AudioWAV/1001_DFA_ANG_XX.wav -- actor, sentence, emotion, intensity.
# The actors' genders are in VideoDemographics.csv, not in the names: gender is None.
# ---------------------------------------------------------------------------------------

CREMAD_EMOTIONS = {
    "ANG": "anger",
    "DIS": "disgust",
    "FEA": "fear",
    "HAP": "happiness",
    "NEU": "neutral",
    "SAD": "sadness",
}
CREMAD_NAME = re.compile(r"^(\d+)_([A-Z]+)_([A-Z]+)_([A-Z]+)$")


def _parse_cremad(path: Path) -> Utterance:
    match = CREMAD_NAME.match(path.stem.upper())
    if not match:
        raise _Unparsed("name is not like 1001_DFA_ANG_XX (actor_sentence_emotion_level)")
    actor, _sentence, code, _level = match.groups()
    emotion = _lookup(CREMAD_EMOTIONS, code, "emotion field")
    return Utterance(path, emotion, actor, None)


def read_cremad(root: Path) -> Corpus:
    return _collect("CREMA-D", root, _parse_cremad)


# ---------------------------------------------------------------------------------------
# The corpora, by canonical name
# ---------------------------------------------------------------------------------------

READERS: dict[str, Callable[[Path], Corpus]] = {
    "CASIA": read_casia,
    "EMODB": read_emodb,
    "EMOVO": read_emovo,
    "IEMOCAP": read_iemocap,
    "RAVDESS": read_ravdess,
    "SAVEE": read_savee,
    "TESS": read_tess,
    "CREMA-D": read_cremad,
}

# What a corpus folder should look like, for error messages.
LAYOUTS: dict[str, str] = {
    "CASIA": "<speaker>/<emotion>/201.wav with emotion folders angry, fear, happy, neutral, sad, surprise",
    "EMODB": "wav/03a01Fa.wav (6th character of the name is the emotion letter)",
    "EMOVO": "f1/dis-f1-b1.wav (emotion-speaker-sentence)",
    "IEMOCAP": "Session1/sentences/wav/<dialog>/<utterance>.wav with labels in Session1/dialog/EmoEvaluation/<dialog>.txt",
    "RAVDESS": "Actor_01/03-01-01-01-01-01-01.wav (3rd field is the emotion)",
    "SAVEE": "DC/a01.wav or DC_a01.wav (speaker, emotion prefix, number)",
    "TESS": "OAF_angry/OAF_back_angry.wav (speaker_word_emotion)",
    "CREMA-D": "AudioWAV/1001_DFA_ANG_XX.wav (actor_sentence_emotion_level)",
}


def _key(name: str) -> str:
    """Folder or corpus name without case and separators: "Crema_D" -> "cremad"."""
    return re.sub(r"[\s_.-]+", "", name.lower())


# Accepted spellings: each canonical name without case/separators, plus these.
ALIASES: dict[str, str] = {_key(name): name for name in READERS}
ALIASES["iemocapfullrelease"] = "IEMOCAP"  # the folder name of the official release


def canonical_name(name: str) -> str:
    """The canonical corpus name of a spelling: "emo-db" -> "EMODB", "crema_d" -> "CREMA-D";
    a name no reader knows (a manifest or folder-per-emotion corpus) is kept as it is."""
    return ALIASES.get(_key(str(name)), str(name))


def survey_corpora(corpora_dir: str | Path) -> tuple[dict[str, Path], list[tuple[Path, str]]]:
    """({name: folder} of every readable corpus, [(folder, why it cannot be read)]).

    Known corpora by their canonical names (the official readers' order), then manifest
    and folder-per-emotion corpora by their folder names."""
    from emodna.custom import has_emotion_folders, manifest_in

    corpora_dir = Path(corpora_dir).expanduser()
    if not corpora_dir.is_dir():
        raise CorpusError(
            f"corpora folder {corpora_dir} does not exist; give a folder with one subfolder "
            f"per corpus ({', '.join(READERS)})"
        )
    subfolders = sorted(p for p in corpora_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    known: dict[str, Path] = {}
    custom: dict[str, Path] = {}
    skipped: list[tuple[Path, str]] = []
    for folder in subfolders:
        canonical = ALIASES.get(_key(folder.name))
        if canonical is not None:
            if canonical in known:
                raise CorpusError(
                    f"corpora folder {corpora_dir} has two folders for {canonical}: "
                    f"{known[canonical].name} and {folder.name}; keep one"
                )
            known[canonical] = folder
        elif manifest_in(folder) is not None or has_emotion_folders(folder):
            custom[folder.name] = folder
        else:
            skipped.append((folder, "not a known corpus, no manifest.csv, no folder named after an "
                            "emotion; add a manifest.csv (path, emotion, speaker) or sort its clips "
                            "into emotion folders (Angry/, Neutral/, ...)"))
    found = {name: known[name] for name in READERS if name in known}
    found.update(custom)
    return found, skipped


def find_corpora(corpora_dir: str | Path) -> dict[str, Path]:
    """{name: folder} for the readable corpora in corpora_dir (:func:`survey_corpora`)."""
    found, skipped = survey_corpora(corpora_dir)
    if not found:
        seen = ", ".join(p.name for p, _ in skipped)
        raise CorpusError(
            f"corpora folder {corpora_dir} holds no corpus"
            + (f" (subfolders: {seen})" if seen else " (no subfolders)")
            + f"; name each corpus folder one of {', '.join(READERS)}, or give it a "
            "manifest.csv, or emotion folders"
        )
    return found


def read_corpus(name: str, root: str | Path) -> Corpus:
    """Read one corpus folder; CorpusError if it is missing or no file name parses."""
    from emodna.custom import manifest_in, read_emotion_folders, read_manifest

    name = canonical_name(name)
    root = Path(root).expanduser()
    if name not in READERS or root.is_file() or (root.is_dir() and manifest_in(root) is not None):
        # a manifest (it wins over a reader's file names), or emotion folders
        if root.is_file():
            corpus = read_manifest(name, root)
        elif manifest_in(root) is not None:
            corpus = read_manifest(name, manifest_in(root))
        elif root.is_dir():
            corpus = read_emotion_folders(name, root)
        else:
            raise CorpusError(f"{name}: {root} does not exist; give a corpus folder or a manifest file")
        if not corpus.utterances:
            raise CorpusError(
                f"{name} folder {root}: no audio file under a folder named after an emotion; "
                "add a manifest.csv (path, emotion, speaker) or sort the clips into emotion folders"
            )
        return corpus
    if not root.is_dir():
        raise CorpusError(f"{name} folder {root} does not exist; expected {LAYOUTS[name]}")
    # Absolute paths: the feature cache is keyed by them, whatever the working directory.
    root = root.resolve()
    corpus = READERS[name](root)
    if not corpus.utterances:
        if corpus.unparsed:
            path, reason = corpus.unparsed[0]
            seen = (
                f"none of its {len(corpus.unparsed)} audio files parses "
                f"(e.g. {path.relative_to(root)}: {reason})"
            )
        else:
            seen = "it holds no labelled audio files"
        raise CorpusError(f"{name} folder {root}: {seen}; expected {LAYOUTS[name]}")
    return corpus


def load_corpora(
    corpora_dir: str | Path | None = None,
    *,
    paths: dict[str, Path] | None = None,
    names: Sequence[str] | None = None,
) -> dict[str, Corpus]:
    """Read corpora found in corpora_dir and/or given as {name: folder} in paths (which win).

    names, if given, picks which corpora to read (in that order); otherwise all found.
    """
    if corpora_dir is None and not paths:
        raise CorpusError(
            "no corpora given; pass a corpora folder (one subfolder per corpus) or paths"
        )
    found: dict[str, Path] = {}
    if corpora_dir is not None:
        found.update(find_corpora(corpora_dir))
    for name, root in (paths or {}).items():
        found[canonical_name(name)] = Path(root)

    if names is None:
        selected = list(found)
    else:
        selected = []
        by_key = {_key(n): n for n in found}
        for name in names:
            canonical = by_key.get(_key(canonical_name(name)), canonical_name(name))
            if canonical not in found:
                raise CorpusError(
                    f"corpus {name!r} was not found; corpora found: {', '.join(found)}"
                    + (f" in {corpora_dir}" if corpora_dir is not None else "")
                )
            if canonical not in selected:
                selected.append(canonical)
    return {name: read_corpus(name, found[name]) for name in selected}
