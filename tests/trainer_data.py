"""Build a tiny dataset in the MInDS-14 shape: 8 kHz espeak-ng speech of short banking phrases.

Columns as on the hub: path, audio, transcription, english_transcription, intent_class (ClassLabel with
the 14 intent names), lang_id. Only a few intents are present, a few clips each.
"""

from __future__ import annotations

import csv
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile
import soxr
from datasets import Audio, ClassLabel, Dataset, Features, Value

INTENTS = (
    "abroad", "address", "app_error", "atm_limit", "balance", "business_loan", "card_issues",
    "cash_deposit", "direct_debit", "freeze", "high_value_payment", "joint_account",
    "latest_transactions", "pay_bill",
)
LANGUAGES = (
    "cs-CZ", "de-DE", "en-AU", "en-GB", "en-US", "es-ES", "fr-FR", "it-IT", "ko-KR", "nl-NL", "pl-PL",
    "pt-PT", "ru-RU", "zh-CN",
)
PHRASES = {
    "balance": ("what is my balance", "how much money is in my account", "check my balance please"),
    "freeze": ("freeze my card now", "please block my card", "I lost my card, freeze it"),
    "abroad": ("I am travelling abroad", "can I use my card in France", "going overseas next week"),
    "pay_bill": ("pay my electricity bill", "I want to pay a bill", "settle my phone bill"),
}
VOICES = ("en-us", "en", "en-us+f3", "en+m3")
SAMPLE_RATE = 8000


def speak(text: str, voice: str, speed: int, path: Path) -> np.ndarray:
    """espeak-ng speech resampled to 8 kHz, written as 16-bit WAV at ``path``."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as raw:
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-w", raw.name, text],
            check=True, capture_output=True,
        )
        audio, rate = soundfile.read(raw.name, dtype="float32")
    audio = soxr.resample(audio, rate, SAMPLE_RATE).astype(np.float32)
    soundfile.write(path, audio, SAMPLE_RATE, subtype="PCM_16")
    return audio


def speak_all(audio_dir: Path, clips_per_intent: int = 4) -> list[dict[str, str]]:
    """Write the clips; one row per clip with file name, intent, transcription."""
    audio_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for intent, phrases in PHRASES.items():
        for n in range(clips_per_intent):
            text = phrases[n % len(phrases)]
            name = f"{intent}_{n}.wav"
            speak(text, VOICES[n % len(VOICES)], 150 + 15 * n, audio_dir / name)
            rows.append({"file_name": name, "intent": intent, "text": text})
    return rows


def minds14_features() -> Features:
    return Features(
        {
            "path": Value("string"),
            "audio": Audio(sampling_rate=SAMPLE_RATE),
            "transcription": Value("string"),
            "english_transcription": Value("string"),
            "intent_class": ClassLabel(names=list(INTENTS)),
            "lang_id": ClassLabel(names=list(LANGUAGES)),
        }
    )


def build_saved_dataset(root: Path, clips_per_intent: int = 4) -> Path:
    """A MInDS-14-shaped dataset saved with ``save_to_disk`` under ``root/saved``."""
    rows = speak_all(root / "wav", clips_per_intent)
    paths = [str(root / "wav" / row["file_name"]) for row in rows]
    dataset = Dataset.from_dict(
        {
            "path": paths,
            "audio": paths,
            "transcription": [row["text"] for row in rows],
            "english_transcription": [row["text"] for row in rows],
            "intent_class": [INTENTS.index(row["intent"]) for row in rows],
            "lang_id": [LANGUAGES.index("en-US")] * len(rows),
        },
        features=minds14_features(),
    )
    saved = root / "saved"
    dataset.save_to_disk(str(saved))
    return saved


def build_audiofolder(root: Path, clips_per_intent: int = 4, splits: bool = False) -> Path:
    """An audiofolder with metadata.csv (file_name,label,text); with ``splits``, train/test subfolders."""
    folder = root / ("folder-split" if splits else "folder")
    rows = speak_all(folder / "clips", clips_per_intent)
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name", "label", "text"])
        for n, row in enumerate(rows):
            name = f"clips/{row['file_name']}"
            if splits:
                split = "test" if n % clips_per_intent == 0 else "train"
                (folder / split).mkdir(exist_ok=True)
                (folder / name).rename(folder / split / row["file_name"])
                name = f"{split}/{row['file_name']}"
            writer.writerow([name, row["intent"], row["text"]])
    return folder
