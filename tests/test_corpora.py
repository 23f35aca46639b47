"""Corpus readers: the real corpora in ../shared/corpora, and generated file trees."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile

from emodna.corpora import canonical_name, find_corpora, load_corpora, read_corpus
from emodna.corpus import AUDIO_EXTENSIONS, Corpus, Utterance
from emodna.errors import CorpusError
from emodna.labels import EMOTIONS
from emodna.official import READERS

RNG = np.random.default_rng(0)


def write_audio(path: Path) -> Path:
    """A real, tiny audio file: 0.1 s of noise at 16 kHz (format from the extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, RNG.uniform(-0.1, 0.1, 1600), 16000)
    return path


def make_tree(root: Path, files) -> Path:
    """Write audio files (relative paths) under root."""
    for relative in files:
        write_audio(root / relative)
    return root


def summary(corpus: Corpus) -> dict[str, tuple[str, str, str | None]]:
    """{path relative to the root: (emotion, speaker, gender)}"""
    return {
        u.path.relative_to(corpus.root).as_posix(): (u.emotion, u.speaker, u.gender)
        for u in corpus.utterances
    }


def unparsed_names(corpus: Corpus) -> list[str]:
    return [path.relative_to(corpus.root).as_posix() for path, _reason in corpus.unparsed]


# ---------------------------------------------------------------------------------------
# Names and extensions
# ---------------------------------------------------------------------------------------


def test_audio_extensions():
    assert {".wav", ".flac", ".ogg"} <= AUDIO_EXTENSIONS
    assert all(ext == ext.lower() and ext.startswith(".") for ext in AUDIO_EXTENSIONS)
    assert ".txt" not in AUDIO_EXTENSIONS


def test_readers_cover_the_corpora():
    assert list(READERS) == [
        "CASIA", "EMODB", "EMOVO", "IEMOCAP", "RAVDESS", "SAVEE", "TESS", "CREMA-D",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "alias, name",
    [
        ("emodb", "EMODB"),
        ("EMO-DB", "EMODB"),
        ("Emo_DB", "EMODB"),
        ("casia", "CASIA"),
        ("Emovo", "EMOVO"),
        ("iemocap", "IEMOCAP"),
        ("IEMOCAP_full_release", "IEMOCAP"),
        ("ravdess", "RAVDESS"),
        ("savee", "SAVEE"),
        ("tess", "TESS"),
        ("cremad", "CREMA-D"),
        ("crema_d", "CREMA-D"),
        ("crema-d", "CREMA-D"),
        ("CREMA-D", "CREMA-D"),
    ],
)
def test_canonical_name_aliases(alias, name):
    assert canonical_name(alias) == name


def test_canonical_name_keeps_a_name_no_reader_knows():
    assert canonical_name("crema_d") == "CREMA-D"
    assert canonical_name("ESD") == "ESD"  # a manifest or folder-per-emotion corpus


# ---------------------------------------------------------------------------------------
# Real corpora (../shared/corpora; skipped where absent)
# ---------------------------------------------------------------------------------------

# Counted once by hand from the file names with find / cut / uniq.
REAL_EMOTIONS = {
    "EMODB": {
        "anger": 127, "boredom": 81, "disgust": 46, "fear": 69,
        "happiness": 71, "neutral": 79, "sadness": 62,
    },
    "CASIA": {
        "anger": 200, "fear": 200, "happiness": 200,
        "neutral": 200, "sadness": 200, "surprise": 200,
    },
    "EMOVO": {
        "anger": 84, "disgust": 84, "fear": 84, "happiness": 84,
        "neutral": 84, "sadness": 84, "surprise": 84,
    },
    "RAVDESS": {
        "anger": 192, "calm": 192, "disgust": 192, "fear": 192,
        "happiness": 192, "neutral": 96, "sadness": 192, "surprise": 192,
    },
}  # fmt: skip
REAL_COUNTS = {"EMODB": 535, "CASIA": 1200, "EMOVO": 588, "RAVDESS": 1440}
REAL_SPEAKERS = {"EMODB": 10, "CASIA": 4, "EMOVO": 6, "RAVDESS": 24}
REAL_GENDERS = {  # utterances per gender
    "EMODB": {"female": 302, "male": 233},
    "CASIA": {"female": 600, "male": 600},
    "EMOVO": {"female": 294, "male": 294},
    "RAVDESS": {"female": 720, "male": 720},
}


@pytest.fixture(scope="module")
def real(corpora_dir):
    """The real corpora, read once for the module."""
    return load_corpora(corpora_dir)


def test_find_corpora_on_the_real_folder(corpora_dir):
    found = find_corpora(corpora_dir)
    assert found == {name: corpora_dir / name for name in ("CASIA", "EMODB", "EMOVO", "RAVDESS")}


def test_find_corpora_is_case_insensitive(corpora_dir, tmp_path):
    (tmp_path / "emodb").symlink_to(corpora_dir / "EMODB")
    (tmp_path / "Casia").symlink_to(corpora_dir / "CASIA")
    (tmp_path / "notes").mkdir()
    assert find_corpora(tmp_path) == {"CASIA": tmp_path / "Casia", "EMODB": tmp_path / "emodb"}
    corpora = load_corpora(tmp_path, names=["emo-db"])
    assert list(corpora) == ["EMODB"]
    assert len(corpora["EMODB"].utterances) == 535


@pytest.mark.parametrize("name", sorted(REAL_COUNTS))
def test_real_counts(real, name):
    corpus = real[name]
    assert corpus.name == name
    assert len(corpus.utterances) == REAL_COUNTS[name]
    assert corpus.unparsed == []
    assert all(u.path.suffix == ".flac" for u in corpus.utterances)
    paths = [u.path for u in corpus.utterances]
    assert paths == sorted(paths)


@pytest.mark.parametrize("name", sorted(REAL_COUNTS))
def test_real_emotions(real, name):
    counts = Counter(u.emotion for u in real[name].utterances)
    assert dict(counts) == REAL_EMOTIONS[name]
    assert set(counts) <= set(EMOTIONS)


@pytest.mark.parametrize("name", sorted(REAL_COUNTS))
def test_real_speakers_and_genders(real, name):
    utterances = real[name].utterances
    assert len({u.speaker for u in utterances}) == REAL_SPEAKERS[name]
    assert dict(Counter(u.gender for u in utterances)) == REAL_GENDERS[name]
    # a speaker has one gender
    genders = {(u.speaker, u.gender) for u in utterances}
    assert len(genders) == REAL_SPEAKERS[name]


def test_real_speaker_details(real):
    emodb = {u.speaker: u.gender for u in real["EMODB"].utterances}
    assert emodb == {
        "03": "male", "08": "female", "09": "female", "10": "male", "11": "male",
        "12": "male", "13": "female", "14": "female", "15": "male", "16": "female",
    }  # fmt: skip
    assert Counter(u.speaker for u in real["EMODB"].utterances) == {
        "03": 49, "08": 58, "09": 43, "10": 38, "11": 55,
        "12": 35, "13": 61, "14": 69, "15": 56, "16": 71,
    }  # fmt: skip
    casia = {u.speaker: u.gender for u in real["CASIA"].utterances}
    assert casia == {
        "liuchanhg": "female",
        "wangzhe": "male",
        "zhaoquanyin": "female",
        "ZhaoZuoxiang": "male",
    }
    emovo = {u.speaker: u.gender for u in real["EMOVO"].utterances}
    assert emovo == {"f1": "female", "f2": "female", "f3": "female",
                     "m1": "male", "m2": "male", "m3": "male"}  # fmt: skip
    ravdess = {u.speaker: u.gender for u in real["RAVDESS"].utterances}
    assert ravdess["01"] == "male" and ravdess["24"] == "female"
    assert Counter(u.speaker for u in real["RAVDESS"].utterances) == {
        f"{actor:02d}": 60 for actor in range(1, 25)
    }


def test_real_single_files(real):
    def lookup(name, relative):
        corpus = real[name]
        return {u.path: u for u in corpus.utterances}[corpus.root / relative]

    assert lookup("EMODB", "wav/03a01Fa.flac") == Utterance(
        real["EMODB"].root / "wav/03a01Fa.flac", "happiness", "03", "male"
    )
    assert lookup("EMOVO", "f1/dis-f1-b1.flac").emotion == "disgust"
    assert lookup("RAVDESS", "Actor_01/03-01-02-01-01-01-01.flac").emotion == "calm"
    assert lookup("CASIA", "wangzhe/surprise/201.flac").emotion == "surprise"


# ---------------------------------------------------------------------------------------
# Generated trees, one per corpus
# ---------------------------------------------------------------------------------------

# name -> {relative path: (emotion, speaker, gender) or None for "unparsed"}
GENERATED = {
    "EMODB": {
        "wav/03a01Fa.wav": ("happiness", "03", "male"),
        "wav/16b10Wb.flac": ("anger", "16", "female"),
        "wav/08a02Lc.WAV": ("boredom", "08", "female"),
        "wav/11a05Ed.wav": ("disgust", "11", "male"),
        "wav/03a01Xa.wav": None,  # X is no emotion letter
        "wav/readme.wav": None,
    },
    "CASIA": {
        "liuchanhg/angry/201.wav": ("anger", "liuchanhg", "female"),
        "ZhaoZuoxiang/happy/202.wav": ("happiness", "ZhaoZuoxiang", "male"),
        "newspeaker/sad/203.wav": ("sadness", "newspeaker", None),
        "wangzhe/bored/201.wav": None,  # not a CASIA emotion folder
        "loose.wav": None,
    },
    "EMOVO": {
        "f1/dis-f1-b1.wav": ("disgust", "f1", "female"),
        "m3/rab-m3-l4.wav": ("anger", "m3", "male"),
        "m2/pau-m2-n1.wav": ("fear", "m2", "male"),
        "f2/xyz-f2-b1.wav": None,
        "f2/notes.wav": None,
    },
    "RAVDESS": {
        "Actor_01/03-01-02-01-01-01-01.wav": ("calm", "01", "male"),
        "Actor_24/03-01-08-02-02-02-24.wav": ("surprise", "24", "female"),
        "Actor_02/03-02-03-01-01-01-02.wav": None,  # song, not speech
        "Actor_02/03-01-09-01-01-01-02.wav": None,  # no emotion 09
        "Actor_02/03-01-01.wav": None,
    },
    "SAVEE": {
        "DC/a01.wav": ("anger", "DC", "male"),
        "AudioData/JE/sa02.wav": ("sadness", "JE", "male"),
        "AudioData/JE/su15.wav": ("surprise", "JE", "male"),
        "KL_n30.wav": ("neutral", "KL", "male"),
        "JK_h07.wav": ("happiness", "JK", "male"),
        "DC/d03.wav": ("disgust", "DC", "male"),
        "DC/f04.wav": ("fear", "DC", "male"),
        "XX/a01.wav": None,  # unknown speaker
        "DC/zz01.wav": None,  # unknown emotion prefix
    },
    "TESS": {
        "OAF_angry/OAF_back_angry.wav": ("anger", "OAF", "female"),
        "YAF_pleasant_surprised/YAF_bite_ps.wav": ("surprise", "YAF", "female"),
        "YAF_happy/YAF_chalk_happy.wav": ("happiness", "YAF", "female"),
        "OAF_Sad/OAF_youth_sad.wav": ("sadness", "OAF", "female"),
        "OAF_angry/XAF_back_angry.wav": None,  # unknown speaker
        "OAF_angry/OAF_back_grumpy.wav": None,
        "OAF_angry/OAF.wav": None,
    },
    "CREMA-D": {
        "AudioWAV/1001_DFA_ANG_XX.wav": ("anger", "1001", None),
        "AudioWAV/1091_WSI_SAD_HI.wav": ("sadness", "1091", None),
        "AudioWAV/1045_IEO_NEU_XX.wav": ("neutral", "1045", None),
        "AudioWAV/1001_DFA_BOR_XX.wav": None,
        "AudioWAV/1001-DFA-ANG-XX.wav": None,
    },
}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_tree(tmp_path, name):
    files = GENERATED[name]
    root = make_tree(tmp_path / name, files)
    (root / "README.txt").write_text("not audio")  # non-audio files are ignored
    (root / ".DS_Store").write_bytes(b"\0")
    (root / "._hidden.wav").write_bytes(b"\0")  # macOS resource fork: ignored

    corpus = read_corpus(name, root)

    assert corpus.name == name
    assert corpus.root == root
    assert summary(corpus) == {path: row for path, row in files.items() if row is not None}
    assert sorted(unparsed_names(corpus)) == sorted(p for p, row in files.items() if row is None)
    assert all(reason for _path, reason in corpus.unparsed)
    paths = [u.path for u in corpus.utterances]
    assert paths == sorted(paths)


def test_savee_reports_why_a_name_does_not_parse(tmp_path):
    root = make_tree(tmp_path / "SAVEE", ["DC/a01.wav", "XX/a01.wav", "DC/zz01.wav"])
    reasons = {p.relative_to(root).as_posix(): r for p, r in read_corpus("savee", root).unparsed}
    assert "'XX'" in reasons["XX/a01.wav"] and "DC, JE, JK, KL" in reasons["XX/a01.wav"]
    assert "'zz'" in reasons["DC/zz01.wav"]


EMO_EVALUATION = """\
% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]

[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]
C-E2:\tNeutral;\t()
C-E3:\tNeutral;\t()
A-E3:\tval 3; act 2; dom  2;\t()

[10.0100 - 11.3925]\tSes01F_impro01_F001\txxx\t[2.5000, 2.5000, 2.5000]
C-E2:\tNeutral;\t()

[14.8872 - 18.0175]\tSes01F_impro01_M002\tang\t[2.0000, 3.5000, 3.5000]

[19.2900 - 20.7875]\tSes01F_impro01_F003\toth\t[2.5000, 2.0000, 2.5000]

[21.3875 - 24.1250]\tSes01F_impro01_M004\tfru\t[2.0000, 3.0000, 3.0000]

[27.4600 - 31.0800]\tSes01F_impro01_F005\texc\t[4.0000, 4.0000, 3.5000]

[32.0000 - 33.5000]\tSes01F_impro01_M006\tsad\t[1.5000, 2.0000, 2.0000]

[34.0000 - 35.0000]\tSes01F_impro01_F007\tabc\t[2.5000, 2.5000, 2.5000]
"""


def make_iemocap(root: Path) -> Path:
    session = root / "Session1"
    evaluation = session / "dialog" / "EmoEvaluation"
    evaluation.mkdir(parents=True)
    (evaluation / "Ses01F_impro01.txt").write_text(EMO_EVALUATION)
    (evaluation / "Categorical").mkdir()  # other annotation files, another format
    (evaluation / "Categorical" / "Ses01F_impro01_e1_cat.txt").write_text(
        "Ses01F_impro01_F000 :Neutral state; ()\n"
    )
    write_audio(session / "dialog" / "wav" / "Ses01F_impro01.wav")  # the whole dialog
    sentences = session / "sentences" / "wav" / "Ses01F_impro01"
    for utterance in ("F000", "F001", "M002", "F003", "M004", "F005", "M006", "F007", "F099"):
        write_audio(sentences / f"Ses01F_impro01_{utterance}.wav")
    (sentences / "Ses01F_impro01_F000.pk").write_bytes(b"\0")  # not audio
    return root


def test_iemocap(tmp_path):
    root = make_iemocap(tmp_path / "IEMOCAP_full_release")
    corpus = read_corpus("IEMOCAP", root)
    wav = "Session1/sentences/wav/Ses01F_impro01/"
    assert summary(corpus) == {
        wav + "Ses01F_impro01_F000.wav": ("neutral", "Ses01F", "female"),
        wav + "Ses01F_impro01_M002.wav": ("anger", "Ses01M", "male"),
        wav + "Ses01F_impro01_F005.wav": ("happiness", "Ses01F", "female"),  # exc
        wav + "Ses01F_impro01_M006.wav": ("sadness", "Ses01M", "male"),
    }
    # xxx, oth and fru are left out without complaint; the dialog recording too.
    reasons = {p.relative_to(root).as_posix(): r for p, r in corpus.unparsed}
    assert sorted(reasons) == [wav + "Ses01F_impro01_F007.wav", wav + "Ses01F_impro01_F099.wav"]
    assert "'abc'" in reasons[wav + "Ses01F_impro01_F007.wav"]
    assert "EmoEvaluation" in reasons[wav + "Ses01F_impro01_F099.wav"]


def test_iemocap_without_labels_is_an_error(tmp_path):
    root = make_tree(tmp_path / "IEMOCAP", ["Session1/sentences/wav/d/Ses01F_impro01_F000.wav"])
    with pytest.raises(CorpusError, match="EmoEvaluation"):
        read_corpus("IEMOCAP", root)


# ---------------------------------------------------------------------------------------
# Errors a user can meet
# ---------------------------------------------------------------------------------------


def test_find_corpora_missing_folder(tmp_path):
    with pytest.raises(CorpusError, match="does not exist") as info:
        find_corpora(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)


def test_find_corpora_empty_folder(tmp_path):
    (tmp_path / "README.md").write_text("files do not count")
    with pytest.raises(CorpusError, match="no subfolders") as info:
        find_corpora(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_find_corpora_no_known_corpus_lists_what_it_saw(tmp_path):
    (tmp_path / "speech").mkdir()
    (tmp_path / "music").mkdir()
    with pytest.raises(CorpusError, match="holds no corpus") as info:
        find_corpora(tmp_path)
    message = str(info.value)
    assert "music, speech" in message
    for name in READERS:
        assert name in message
    assert "manifest.csv" in message and "\n" not in message


def test_find_corpora_two_folders_for_one_corpus(tmp_path):
    (tmp_path / "EMODB").mkdir()
    (tmp_path / "emo-db").mkdir()
    with pytest.raises(CorpusError, match="two folders for EMODB"):
        find_corpora(tmp_path)


def test_find_corpora_generated(tmp_path):
    make_tree(tmp_path / "crema_d", ["AudioWAV/1001_DFA_ANG_XX.wav"])
    make_tree(tmp_path / "Savee", ["DC/a01.wav"])
    (tmp_path / "other").mkdir()
    assert find_corpora(tmp_path) == {"SAVEE": tmp_path / "Savee", "CREMA-D": tmp_path / "crema_d"}


def test_read_corpus_missing_folder(tmp_path):
    with pytest.raises(CorpusError, match="does not exist") as info:
        read_corpus("emodb", tmp_path / "EMODB")
    assert "03a01Fa" in str(info.value)  # the expected layout


def test_read_corpus_where_no_name_parses(tmp_path):
    root = make_tree(tmp_path / "EMODB", ["wav/hello.wav", "wav/world.flac"])
    with pytest.raises(CorpusError) as info:
        read_corpus("EMODB", root)
    message = str(info.value)
    assert str(root) in message and "none of its 2 audio files parses" in message
    assert "03a01Fa" in message and "\n" not in message


def test_read_corpus_with_only_non_audio_files(tmp_path):
    root = tmp_path / "TESS"
    (root / "OAF_angry").mkdir(parents=True)
    (root / "OAF_angry" / "OAF_back_angry.txt").write_text("not audio")
    (root / "OAF_angry" / "OAF_back_angry.mp4").write_bytes(b"\0")
    with pytest.raises(CorpusError, match="no labelled audio files"):
        read_corpus("TESS", root)


def test_read_corpus_unknown_name_without_manifest_or_emotion_folders(tmp_path):
    with pytest.raises(
        CorpusError,
        match="MSP folder .*: no audio file under a folder named after an emotion; add a manifest.csv",
    ):
        read_corpus("MSP", tmp_path)
    with pytest.raises(CorpusError, match="MSP: .*nowhere does not exist"):
        read_corpus("MSP", tmp_path / "nowhere")


def test_load_corpora_names_and_paths(tmp_path):
    make_tree(tmp_path / "data" / "SAVEE", ["DC/a01.wav", "DC/n02.wav"])
    make_tree(tmp_path / "data" / "TESS", ["OAF_angry/OAF_back_angry.wav"])
    make_tree(tmp_path / "elsewhere" / "cremad", ["1001_DFA_ANG_XX.wav"])

    everything = load_corpora(tmp_path / "data", paths={"crema-d": tmp_path / "elsewhere/cremad"})
    assert list(everything) == ["SAVEE", "TESS", "CREMA-D"]
    assert len(everything["SAVEE"].utterances) == 2

    picked = load_corpora(tmp_path / "data", names=["tess", "Savee"])
    assert list(picked) == ["TESS", "SAVEE"]

    only_paths = load_corpora(paths={"TESS": tmp_path / "data" / "TESS"})
    assert list(only_paths) == ["TESS"]


def test_load_corpora_explicit_path_wins(tmp_path):
    make_tree(tmp_path / "data" / "TESS", ["OAF_angry/OAF_back_angry.wav"])
    make_tree(tmp_path / "other_tess", ["YAF_sad/YAF_back_sad.wav", "YAF_sad/YAF_bite_sad.wav"])
    corpora = load_corpora(tmp_path / "data", paths={"tess": tmp_path / "other_tess"})
    assert corpora["TESS"].root == tmp_path / "other_tess"
    assert len(corpora["TESS"].utterances) == 2


def test_load_corpora_absent_name_lists_the_corpora_found(tmp_path):
    make_tree(tmp_path / "SAVEE", ["DC/a01.wav"])
    with pytest.raises(CorpusError, match="'IEMOCAP' was not found; corpora found: SAVEE"):
        load_corpora(tmp_path, names=["IEMOCAP"])
    with pytest.raises(CorpusError, match="'MSP' was not found; corpora found: SAVEE"):
        load_corpora(tmp_path, names=["MSP"])


def test_load_corpora_needs_a_folder_or_paths():
    with pytest.raises(CorpusError, match="no corpora given"):
        load_corpora()
