"""Readers of the official corpora, one per corpus: its codes and one small parse function.

Each corpus encodes its labels in its file and folder names. A reader walks the corpus folder
(:func:`emodna.corpus.collect`), parses every audio file, and keeps the files it cannot parse
in :attr:`Corpus.unparsed` with the reason, so a user can see what was left out.
:data:`READERS` maps each canonical name to its reader, :data:`LAYOUTS` says what its folder
should look like (for error messages).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from emodna.corpus import Corpus, Unparsed, Utterance, collect, lookup
from emodna.labels import normalize_emotion

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
        raise Unparsed("name is not like 03a01Fa (speaker, text, emotion letter, version)")
    speaker, code = match.groups()
    emotion = lookup(EMODB_EMOTIONS, code, "emotion letter")
    return Utterance(path, emotion, speaker, EMODB_GENDERS.get(speaker))


def read_emodb(root: Path) -> Corpus:
    return collect("EMODB", root, _parse_emodb)


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
            raise Unparsed("not inside a <speaker>/<emotion>/ folder")
        speaker, emotion_folder = folders[-2], folders[-1]
        emotion = lookup(CASIA_EMOTIONS, emotion_folder.lower(), "emotion folder")
        return Utterance(path, emotion, speaker, CASIA_GENDERS.get(speaker.lower()))

    return collect("CASIA", root, parse)


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
        raise Unparsed("name is not like dis-f1-b1 (emotion-speaker-sentence)")
    code, speaker, _sentence = match.groups()
    emotion = lookup(EMOVO_EMOTIONS, code, "emotion prefix")
    gender = "female" if speaker.startswith("f") else "male"
    return Utterance(path, emotion, speaker, gender)


def read_emovo(root: Path) -> Corpus:
    return collect("EMOVO", root, _parse_emovo)


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
        raise Unparsed("name is not like 03-01-01-01-01-01-01 (seven 2-digit fields)")
    channel, code, actor = match.groups()
    if channel != "01":
        raise Unparsed(f"vocal channel {channel} is song, not speech (01)")
    emotion = lookup(RAVDESS_EMOTIONS, code, "emotion field")
    gender = "male" if int(actor) % 2 == 1 else "female"
    return Utterance(path, emotion, actor, gender)


def read_ravdess(root: Path) -> Corpus:
    return collect("RAVDESS", root, _parse_ravdess)


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
        raise Unparsed(
            f"speaker {speaker!r} is not one of {', '.join(SAVEE_SPEAKERS)} "
            "(expected DC/a01 or DC_a01)"
        )
    match = SAVEE_CODE.match(code.lower())
    if not match:
        raise Unparsed(f"{code!r} is not an emotion prefix and a number, like a01 or sa01")
    emotion = lookup(SAVEE_EMOTIONS, match.group(1), "emotion prefix")
    return Utterance(path, emotion, speaker, "male")


def read_savee(root: Path) -> Corpus:
    return collect("SAVEE", root, _parse_savee)


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
            raise Unparsed(f"no label for {name!r} in any EmoEvaluation/*.txt")
        code, txt = labels[name]
        if code in IEMOCAP_LEFT_OUT:
            return None
        if code not in IEMOCAP_EMOTIONS:
            raise Unparsed(f"label {code!r} in {txt} is not one of {', '.join(IEMOCAP_EMOTIONS)}")
        session, last = name.split("_")[0], name.split("_")[-1]  # Ses01F, F000
        if not re.match(r"^Ses\d\d[FM]$", session) or last[:1] not in ("F", "M"):
            raise Unparsed("name is not like Ses01F_impro01_F000")
        speaker = session[:-1] + last[0]  # the session and the speaker's gender letter
        gender = "female" if last[0] == "F" else "male"
        return Utterance(path, normalize_emotion(IEMOCAP_EMOTIONS[code]), speaker, gender)

    return collect("IEMOCAP", root, parse)


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
        raise Unparsed("name is not like OAF_back_angry (speaker_word_emotion)")
    speaker, code = fields[0].upper(), fields[-1].lower()
    if speaker not in TESS_SPEAKERS:
        raise Unparsed(f"speaker {speaker!r} is not one of {', '.join(TESS_SPEAKERS)}")
    emotion = lookup(TESS_EMOTIONS, code, "emotion")
    return Utterance(path, emotion, speaker, "female")


def read_tess(root: Path) -> Corpus:
    return collect("TESS", root, _parse_tess)


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
        raise Unparsed("name is not like 1001_DFA_ANG_XX (actor_sentence_emotion_level)")
    actor, _sentence, code, _level = match.groups()
    emotion = lookup(CREMAD_EMOTIONS, code, "emotion field")
    return Utterance(path, emotion, actor, None)


def read_cremad(root: Path) -> Corpus:
    return collect("CREMA-D", root, _parse_cremad)


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
