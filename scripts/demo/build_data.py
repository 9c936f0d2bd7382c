#!/usr/bin/env python3
"""Builds the demo corpus, the downstream dataset and a byte-level BPE tokenizer from the King James Bible.

Source: Debian's `bible-kjv` package (public-domain KJV text, read through its `bible` program).
Outputs (all deterministic for a given seed):
  assets/demo/data/train.jsonl, validation.jsonl   downstream task: which section of the Bible a verse is from
  assets/demo/model/tokenizer.json, tokenizer_config.json
  <work>/pretrain.txt                              pretraining text (downstream validation verses held out)
Usage: python3 scripts/demo/build_data.py <work-dir>
"""
import collections
import json
import random
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEED = 1611
VOCAB_SIZE = 2048
SPECIALS = ["<|endoftext|>", "<|pad|>"]

# Section labels: one word each, so an answer is a short completion.
SECTIONS = [
    ("law", ["Genesis", "Exodus", "Leviticus", "Numbers", "Deuteronomy"]),
    ("history", ["Joshua", "Judges", "Ruth", "1 Samuel", "2 Samuel", "1 Kings", "2 Kings", "1 Chronicles",
                 "2 Chronicles", "Ezra", "Nehemiah", "Esther", "Acts"]),
    ("wisdom", ["Job", "Psalms", "Proverbs", "Ecclesiastes", "Song of Solomon"]),
    ("prophets", ["Isaiah", "Jeremiah", "Lamentations", "Ezekiel", "Daniel", "Hosea", "Joel", "Amos", "Obadiah",
                  "Jonah", "Micah", "Nahum", "Habakkuk", "Zephaniah", "Haggai", "Zechariah", "Malachi",
                  "Revelation"]),
    ("gospels", ["Matthew", "Mark", "Luke", "John"]),
    ("letters", ["Romans", "1 Corinthians", "2 Corinthians", "Galatians", "Ephesians", "Philippians",
                 "Colossians", "1 Thessalonians", "2 Thessalonians", "1 Timothy", "2 Timothy", "Titus",
                 "Philemon", "Hebrews", "James", "1 Peter", "2 Peter", "1 John", "2 John", "3 John", "Jude"]),
]
TRAIN_PER_LABEL = 300
VALIDATION_PER_LABEL = 40
PROMPT = "Verse: {text}\nSection:"


def read_verses():
    out = subprocess.run(["bible", "-m", "8192", "-l100000", "Gen1:1-Rev22:21"], check=True,
                         capture_output=True, text=True).stdout
    verses, book = [], None
    for line in out.splitlines():
        head = re.fullmatch(r"([1-3]? ?[A-Z][A-Za-z ]+?) (\d+)", line.strip())
        if head and not line.startswith(" "):
            book = head.group(1)
            continue
        m = re.fullmatch(r"\s+(\d+) (.+)", line)
        if m and book:
            verses.append((book, m.group(2).strip()))
    return verses


def bytes_to_unicode():
    """GPT-2's reversible byte → printable character map (what the ByteLevel pre-tokenizer uses)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


# GPT-2's split pattern restricted to ASCII, which is all the KJV text holds.
SPLIT = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+")


def train_bpe(texts):
    b2u = bytes_to_unicode()
    words = collections.Counter()
    for text in texts:
        for piece in SPLIT.findall(text):
            words[tuple(b2u[b] for b in piece.encode("utf-8"))] += 1
    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for ch in sorted(b2u.values(), key=lambda c: ord(c)):
        vocab[ch] = len(vocab)
    merges = []
    words = dict(words)
    while len(vocab) < VOCAB_SIZE:
        pairs = collections.Counter()
        for word, freq in words.items():
            for a, b in zip(word, word[1:]):
                pairs[(a, b)] += freq
        if not pairs:
            break
        # deterministic tie-break: highest count, then lexicographic
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        merged = best[0] + best[1]
        merges.append(f"{best[0]} {best[1]}")
        vocab[merged] = len(vocab)
        new_words = {}
        for word, freq in words.items():
            if len(word) < 2:
                new_words[word] = freq
                continue
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == best[0] and word[i + 1] == best[1]:
                    out.append(merged)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            new_words[tuple(out)] = new_words.get(tuple(out), 0) + freq
        words = new_words
    return vocab, merges


def tokenizer_json(vocab, merges):
    added = [{"id": vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for t in SPECIALS]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": byte_level, "post_processor": byte_level, "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }


def main():
    work = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/adapter-studio-demo")
    work.mkdir(parents=True, exist_ok=True)
    verses = read_verses()
    assert len(verses) == 31102, f"expected 31102 KJV verses, parsed {len(verses)}"
    section_of = {book: label for label, books in SECTIONS for book in books}
    missing = sorted({b for b, _ in verses} - set(section_of))
    assert not missing, f"books without a section: {missing}"

    rng = random.Random(SEED)
    by_label = collections.defaultdict(list)
    for i, (book, text) in enumerate(verses):
        # short and mid-length verses keep demo sequences small
        if 40 <= len(text) <= 160:
            by_label[section_of[book]].append(i)
    train, validation, held_out = [], [], set()
    for label, _ in SECTIONS:
        idx = by_label[label][:]
        rng.shuffle(idx)
        for i in idx[:VALIDATION_PER_LABEL]:
            validation.append({"prompt": PROMPT.format(text=verses[i][1]), "completion": f" {label}"})
            held_out.add(i)
        for i in idx[VALIDATION_PER_LABEL:VALIDATION_PER_LABEL + TRAIN_PER_LABEL]:
            train.append({"prompt": PROMPT.format(text=verses[i][1]), "completion": f" {label}"})
    rng.shuffle(train)
    rng.shuffle(validation)

    data_dir = ROOT / "assets/demo/data"
    data_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train.jsonl", train), ("validation.jsonl", validation)):
        (data_dir / name).write_text("".join(json.dumps(r) + "\n" for r in rows))

    # Pretraining text: every verse except the downstream validation ones, one chapter-ordered stream.
    pretrain = [text for i, (_, text) in enumerate(verses) if i not in held_out]
    (work / "pretrain.txt").write_text("\n".join(pretrain) + "\n")

    vocab, merges = train_bpe(pretrain)
    model_dir = ROOT / "assets/demo/model"
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "tokenizer.json").write_text(json.dumps(tokenizer_json(vocab, merges), ensure_ascii=False))
    (model_dir / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
        "pad_token": "<|pad|>", "unk_token": None, "add_bos_token": False, "add_eos_token": False,
        "model_max_length": 256, "clean_up_tokenization_spaces": False,
    }, indent=2) + "\n")
    print(f"verses {len(verses)}, train {len(train)}, validation {len(validation)}, vocab {len(vocab)}, "
          f"merges {len(merges)}, pretrain chars {sum(map(len, pretrain))}")


if __name__ == "__main__":
    main()
