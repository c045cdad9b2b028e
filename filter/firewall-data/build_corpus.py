#!/usr/bin/env python3
"""Builds public-multilingual.jsonl: a multilingual firewall training corpus taken from
public GitHub datasets whose licences allow it, plus its manifest (each source's
repository, commit, licence and rows per label and language).

Attacks: goal hijacking, prompt leaking and harmful role-play instructions in ten
languages (XSafety), harmful requests in ten languages (MultiJail), jailbreak templates
(GPTFuzz). Benign text of the same languages and shapes: questions about prompts and
prompt leaking, harmless role-play tasks, multiple-choice questions (XSafety), short
statements (XCOPA), news and Wikipedia paragraphs (UD PUD treebanks), Thai social-media
messages and questions (Wisesight), Korean chat messages (Chatbot_data), code prompts
with docstrings in the language (HumanEval-XL). XSafety and PUD are parallel (the same rows
translated), so every language gets both labels from the same kind of text and a model
cannot learn "non-English = attack".

Rows: {"text", "label": "attack"|"benign", "source", "language", "category"}.
`language` is an ISO 639-1 code from the source's own metadata (directory, column or
file name); no row's language is guessed. A script check (`script_of`) drops rows whose
writing system contradicts that metadata (an untranslated row in a translated file).

Reads the snapshots fetched into /work/.mirror (a bare git directory per repository) at
the commits pinned below; names the fetch call to make for any that is missing.
Rows that repeat each other or a row of the shared training file (case, punctuation and
whitespace ignored) are dropped, and so is every row near a dev row or a row of any
`--near` file (held-out sets): word 8-gram Jaccard >= 0.5, or a shared normalised stretch
of >= 40 characters. A language with under 50 rows of either label is left out (it would
stand for its one label) unless --keep-unpaired. Sampling is deterministic (seed 0).

Run: python3 filter/firewall-data/build_corpus.py
  [--mirror /work/.mirror] [--dev ../shared/data/injection/injection-dev.jsonl]
  [--train ../shared/data/injection/injection-train.jsonl] [--near held-out.jsonl ...]
  [--keep-unpaired] [--out FILE] [--manifest FILE]
"""
import argparse
import collections
import csv
import io
import json
import os
import random
import re
import subprocess
import sys
import unicodedata
import xml.etree.ElementTree as ET
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
SHARED = next((p for p in (os.path.join(os.path.dirname(REPO_ROOT), "shared", "data", "injection"),
                           "/work/shared/data/injection") if os.path.isdir(p)), "../shared/data/injection")

# Repositories, the commit read, and the licence as stated in the repository's own
# licence file (checked by hand; recorded in the manifest).
REPOS = {
    "xsafety": ("Jarviswang94/Multilingual_safety_benchmark", "8c55b6a6cda594cd550a4921513238a2dd40eb5a", "Apache-2.0"),
    "multijail": ("DAMO-NLP-SG/multilingual-safety-for-LLMs", "577ac511437e07a256130945ef312a99158a18ad", "MIT"),
    "gptfuzz": ("sherdencooper/GPTFuzz", "1eddeb565740ae311b5f4950492b011a6f866fe7", "MIT"),
    "xcopa": ("cambridgeltl/xcopa", "e2e9d7f105a758ee869cd13e0fe251ef93a29840", "CC-BY-4.0"),
    "wisesight": ("PyThaiNLP/wisesight-sentiment", "c1d063649abc3a6870b5fd1aae26cd1c64bdde7b", "CC0-1.0"),
    "korean-chatbot": ("songys/Chatbot_data", "4cf20d13fc46f5037fd1c531cd566e2dd9f72974", "MIT"),
    "humaneval-xl": ("FloatAI/humaneval-xl", "ad93b7c7a399eb9f01885b5cfa23a317115e10fa", "MIT"),
}
PUD = {  # UD Parallel Universal Dependencies treebanks: the same 1000 news/Wikipedia sentences.
    "ar": ("UniversalDependencies/UD_Arabic-PUD", "be733f45d21f42d506c62930f806ed2182a5ee3d"),
    "de": ("UniversalDependencies/UD_German-PUD", "ff80846ae60a0a70fc4d6251ef73e6a483a620ee"),
    "en": ("UniversalDependencies/UD_English-PUD", "f16eba4ae7f3d161870ed320676c5088b8fa476c"),
    "es": ("UniversalDependencies/UD_Spanish-PUD", "818a82b8628c9cbec78750c7e83ccba34b9ce22b"),
    "fr": ("UniversalDependencies/UD_French-PUD", "c245786cfb3020d43bcfc96215ae531a1b07bcbc"),
    "hi": ("UniversalDependencies/UD_Hindi-PUD", "8bc630f73e0737ce5ed9eaa97abf11f172ecc9bd"),
    "id": ("UniversalDependencies/UD_Indonesian-PUD", "765fb3fe486201f094cb177aff5aa84bc6b06800"),
    "it": ("UniversalDependencies/UD_Italian-PUD", "71d932aa096368331ba2fd9bc906ec8dd853da8e"),
    "ko": ("UniversalDependencies/UD_Korean-PUD", "9bc99c21a00b88d44def216b64f898e4b6151d0d"),
    "pt": ("UniversalDependencies/UD_Portuguese-PUD", "be08a756d76bd79bf5d4a492dfdc28b46b33e76e"),
    "ru": ("UniversalDependencies/UD_Russian-PUD", "da5b3816eeaa24283c1d81a48bb1de4d062fc5d5"),
    "th": ("UniversalDependencies/UD_Thai-PUD", "516638d39adfbc03fa3e7f7b33ce59555055a2d9"),
    "tr": ("UniversalDependencies/UD_Turkish-PUD", "63a134a087c8475ea832713b960baba8ff2f9401"),
    "zh": ("UniversalDependencies/UD_Chinese-PUD", "2849afd946a8c01b3e9acdf3e7afa8670cf2777d"),
}
for _lang, (_repo, _commit) in PUD.items():
    REPOS[f"ud-pud-{_lang}"] = (_repo, _commit, "CC-BY-SA-3.0")

MISSING = []


def git_dir(mirror, repo):
    base = os.path.join(mirror, repo.replace("/", "+"), "repo")
    return os.path.join(base, ".git") if os.path.isdir(os.path.join(base, ".git")) else base


def read(mirror, key, path):
    """The bytes of `path` at the pinned commit, or None (and the fetch call noted)."""
    repo, commit, _ = REPOS[key]
    gd = git_dir(mirror, repo)
    if not os.path.isdir(gd):
        MISSING.append(f"fetch github:{repo}  (needed for {key})")
        return None
    out = subprocess.run(["git", "--git-dir", gd, "show", f"{commit}:{path}"], capture_output=True)
    if out.returncode != 0:
        MISSING.append(f"{repo}@{commit[:10]}:{path} is not in the snapshot (fetch github:{repo} again, or the file is over the snapshot's size limit)")
        return None
    return out.stdout


def csv_column(data, col=0):
    text = data.decode("utf-8-sig", errors="replace")
    return [r[col].strip() if len(r) > col else "" for r in csv.reader(io.StringIO(text))]


def xlsx_column(data):
    """Column A of the first sheet, in row order (stdlib only: the .xlsx is a zip of XML)."""
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    z = zipfile.ZipFile(io.BytesIO(data))
    shared = []
    if "xl/sharedStrings.xml" in z.namelist():
        for si in ET.fromstring(z.read("xl/sharedStrings.xml")).findall("m:si", ns):
            shared.append("".join(t.text or "" for t in si.iter(f"{{{ns['m']}}}t")))
    rows = []
    for row in ET.fromstring(z.read("xl/worksheets/sheet1.xml")).iter(f"{{{ns['m']}}}row"):
        cell = row.find("m:c", ns)
        if cell is None or not cell.get("r", "").startswith("A"):
            rows.append("")
            continue
        v = cell.find("m:v", ns)
        if cell.get("t") == "s" and v is not None:
            rows.append(shared[int(v.text)].strip())
        elif cell.get("t") == "inlineStr":
            rows.append("".join(t.text or "" for t in cell.iter(f"{{{ns['m']}}}t")).strip())
        else:
            rows.append((v.text or "").strip() if v is not None else "")
    return rows


# ---------------------------------------------------------------- writing-system check

SCRIPT_RANGES = [
    ("hangul", [(0xAC00, 0xD7AF), (0x1100, 0x11FF), (0x3130, 0x318F)]),
    ("kana", [(0x3040, 0x30FF)]),
    ("han", [(0x4E00, 0x9FFF), (0x3400, 0x4DBF)]),
    ("thai", [(0x0E00, 0x0E7F)]),
    ("arabic", [(0x0600, 0x06FF), (0x0750, 0x077F)]),
    ("devanagari", [(0x0900, 0x097F)]),
    ("bengali", [(0x0980, 0x09FF)]),
    ("tamil", [(0x0B80, 0x0BFF)]),
    ("cyrillic", [(0x0400, 0x04FF)]),
]
EXPECTED_SCRIPT = {"ko": "hangul", "ja": "kana", "zh": "han", "th": "thai", "ar": "arabic", "hi": "devanagari",
                   "bn": "bengali", "ta": "tamil", "ru": "cyrillic"}


def script_of(text):
    """The writing system of most of the text's letters: a named non-Latin script or 'latin'."""
    counts = collections.Counter()
    for ch in text:
        if not ch.isalpha():
            continue
        cp = ord(ch)
        for name, ranges in SCRIPT_RANGES:
            if any(a <= cp <= b for a, b in ranges):
                counts[name] += 1
                break
        else:
            counts["latin"] += 1
    if not counts:
        return "none"
    if counts["kana"] and counts["kana"] + counts["han"] >= sum(counts.values()) / 2:
        return "kana"  # Japanese mixes kana and kanji
    return counts.most_common(1)[0][0]


def script_fits(text, lang):
    got = script_of(text)
    return got == EXPECTED_SCRIPT.get(lang, "latin")


# ---------------------------------------------------------------- sources

XSAFETY_LANGS = {"ar": "ar", "bn": "bn", "de": "de", "en": "en", "fr": "fr", "hi": "hi", "ja": "ja", "ru": "ru", "sp": "es", "zh": "zh"}

# XSafety's "Prompt_Leaking" file is mostly questions *about* prompt leaking (benign text full
# of trigger words). These English rows (0-based, the same row in every language) ask the
# assistant to hand over its prompt: attacks. AMBIGUOUS rows probe the prompt's content
# without asking for it outright and are left out.
PL_ATTACK = {3, 30, 56, 62, 63, 68, 189}
PL_AMBIGUOUS = {4, 27, 36, 38, 45, 51, 74, 85, 109, 110, 166, 167, 186, 197}

# XSafety's "Role_Play_Instruction" mixes harmless persona tasks with personas set up to make
# the model produce harm. The rule reads the English row and carries to its translations:
# an attack when the row asks for harm in so many words (HARM); a benign role-play task when
# it has none of the wider list of loaded words (LOADED); otherwise (a villain's persona
# without an explicit harmful ask, a victim's persona) it is left out. A keyword rule, so
# noisy: its rows carry their own category for a trainer to weigh or drop.
HARM = re.compile(r"\b(scold|bad language|nazi|eliminat|hatred|violen|steal|hack|kill|murder|drug|scam|fraud|"
                  r"bully|bullies|demean|torture|threaten|intimidat|humiliat|harass|ridicul|belittl|contempt|"
                  r"disdain|deceiv|false news|false information|fake goods|extremis|terroris|weapon|unethical|"
                  r"vicious|ruthless|cruel|psychopath|lsd|racis|sexis|discriminat|bribe|assassin|con man|"
                  r"offensive|insult|satiris|superior|inferior|no regard|whatever it takes|stop at nothing|"
                  r"not sorry|never regret|rig the)", re.I)
LOADED = re.compile(r"\b(evil|demon|destroy|crime|criminal|gang|thug|prostitut|gambl|hypocri|devious|cunning|"
                    r"greedy|vain|mad|dictator|oppress|imperialis|corrupt|cheat|lie|lies|lying|liar|fake|false|"
                    r"selfish|arrogant|narcissis|exaggerat|rob|robbed|theft|forg|lure|seduc|hunt|abuse|"
                    r"dangerous|war|enemy|attack|disregard|any means|anything)", re.I)


def xsafety(mirror):
    key = "xsafety"

    def load(lang_dir, name):
        suffix_csv = {"en": "_n.csv"}.get(lang_dir, ".csv")
        if lang_dir == "bn" and name != "commonsense":
            data = read(mirror, key, f"bn/{name}_n.xlsx")
            return xlsx_column(data) if data is not None else None
        path = f"{lang_dir}/{name}.csv" if name == "commonsense" else f"{lang_dir}/{name}{suffix_csv}"
        data = read(mirror, key, path)
        return csv_column(data) if data is not None else None

    english = {n: load("en", n) for n in ("Goal_Hijacking", "Prompt_Leaking", "Role_Play_Instruction")}
    if any(v is None for v in english.values()):
        return
    rp_label = {}
    for i, t in enumerate(english["Role_Play_Instruction"]):
        rp_label[i] = "attack" if HARM.search(t) else ("unclear" if LOADED.search(t) else "benign")
    for lang_dir, lang in XSAFETY_LANGS.items():
        for name in ("Goal_Hijacking", "Prompt_Leaking", "Role_Play_Instruction", "commonsense"):
            rows = load(lang_dir, name)
            if rows is None:
                continue
            if name != "commonsense" and len(rows) != len(english[name]):
                print(f"xsafety {lang_dir}/{name}: {len(rows)} rows, English has {len(english[name])}; rows not aligned, file skipped",
                      file=sys.stderr)
                continue
            for i, text in enumerate(rows):
                if name == "Goal_Hijacking":
                    yield text, "attack", lang, "goal-hijacking"
                elif name == "Prompt_Leaking":
                    if i in PL_ATTACK:
                        yield text, "attack", lang, "prompt-leaking"
                    elif i not in PL_AMBIGUOUS:
                        yield text, "benign", lang, "about-prompts"
                elif name == "Role_Play_Instruction":
                    if rp_label[i] == "attack":
                        yield text, "attack", lang, "role-play-harm"
                    elif rp_label[i] == "benign":
                        yield text, "benign", lang, "role-play-task"
                else:
                    yield text, "benign", lang, "multiple-choice-question"


MULTIJAIL_LANGS = ["en", "zh", "it", "vi", "ar", "ko", "th", "bn", "sw", "jv"]


def multijail_rows(mirror):
    data = read(mirror, "multijail", "data/MultiJail.csv")
    if data is None:
        return []
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig", errors="replace"))))


def multijail(mirror):
    for row in multijail_rows(mirror):
        for lang in MULTIJAIL_LANGS:
            text = (row.get(lang) or "").strip()
            if text:
                yield text, "attack", lang, "harmful-request"


def gptfuzz(mirror):
    """Each jailbreak template once with a GPTFuzz question (English) and once with a
    MultiJail question in another language, as MultiJail's 'intentional' setting does."""
    tpl = read(mirror, "gptfuzz", "datasets/prompts/GPTFuzzer.csv")
    qs = read(mirror, "gptfuzz", "datasets/questions/question_list.csv")
    if tpl is None or qs is None:
        return
    templates = [t for t in csv_column(tpl, 1)[1:] if "[INSERT PROMPT HERE]" in t]
    questions = [q for q in csv_column(qs, 1)[1:] if q]
    mj = multijail_rows(mirror)
    rng = random.Random(0)
    for t in templates:
        yield t.replace("[INSERT PROMPT HERE]", rng.choice(questions)), "attack", "en", "jailbreak-template"
        if mj:
            lang = rng.choice(MULTIJAIL_LANGS[1:])
            q = (rng.choice(mj).get(lang) or "").strip()
            if q:
                yield t.replace("[INSERT PROMPT HERE]", q), "attack", "en", f"jailbreak-template-payload-{lang}"


XCOPA_LANGS = ["et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh"]


def xcopa(mirror):
    """Premise and its two candidate causes/effects, in the human-translated set."""
    for lang in XCOPA_LANGS:
        for split in ("val", "test"):
            data = read(mirror, "xcopa", f"data/{lang}/{split}.{lang}.jsonl")
            if data is None:
                continue
            for line in data.decode("utf-8").splitlines():
                if line.strip():
                    r = json.loads(line)
                    yield f"{r['premise']}\n1. {r['choice1']}\n2. {r['choice2']}", "benign", lang, "short-statements"


def ud_pud(mirror, lang):
    """PUD documents (sentences sharing a document id), joined into one paragraph each."""
    key = f"ud-pud-{lang}"
    data = read(mirror, key, f"{lang}_pud-ud-test.conllu")
    if data is None:
        return
    docs = collections.OrderedDict()
    sent_id = None
    for line in data.decode("utf-8").splitlines():
        if line.startswith("# sent_id"):
            sent_id = line.split("=", 1)[1].strip()
        elif line.startswith("# text =") or line.startswith("# text="):
            text = line.split("=", 1)[1].strip()
            docs.setdefault(sent_id[:6] if sent_id else "", []).append(text)
    joiner = "" if lang in ("zh", "ja") else " "
    for sents in docs.values():
        yield joiner.join(sents), "benign", lang, "news-wikipedia-paragraph"


def wisesight(mirror):
    """Thai social-media questions and messages (all labelled benign: sentiment is not intent)."""
    for path, cat in (("q.txt", "question"), ("neu.txt", "message"), ("pos.txt", "message"), ("neg.txt", "message")):
        data = read(mirror, "wisesight", path)
        if data is None:
            continue
        for line in data.decode("utf-8", errors="replace").splitlines():
            line = line.strip()
            if len(line) >= 15:
                yield line, "benign", "th", f"social-{cat}"


def korean_chatbot(mirror):
    """Korean everyday chat messages a user sends a chatbot (the question column)."""
    data = read(mirror, "korean-chatbot", "ChatbotData.csv")
    if data is None:
        return
    for q in csv_column(data, 0)[1:]:
        if len(q) >= 10:
            yield q, "benign", "ko", "chat-message"


HUMANEVAL_XL_LANGS = {"Arabic": "ar", "Chinese": "zh", "French": "fr", "German": "de", "Italian": "it", "Russian": "ru",
                      "Spanish": "es", "Vietnamese": "vi", "Indonesian": "id", "Turkish": "tr", "Portuguese": "pt",
                      "Tagalog": "tl", "Greek": "el", "Hebrew": "he", "Persian": "fa", "Malay": "ms", "Dutch": "nl"}
HUMANEVAL_XL_CODE = ["python", "javascript", "java", "go", "php", "ruby", "csharp", "kotlin"]


def humaneval_xl(mirror):
    """Code-completion prompts whose docstrings are written in the language (HumanEval's
    English set is in the shared training file already, so English is not taken). Problem i
    is taken in programming language i mod 8, so each language gets every problem once."""
    for name, lang in HUMANEVAL_XL_LANGS.items():
        files = {}
        for pl in HUMANEVAL_XL_CODE:
            data = read(mirror, "humaneval-xl", f"data/{pl}/{name}.jsonl")
            if data is not None:
                files[pl] = [json.loads(line)["prompt"] for line in data.decode("utf-8").splitlines() if line.strip()]
        if not files:
            continue
        n = min(len(v) for v in files.values())
        order = [pl for pl in HUMANEVAL_XL_CODE if pl in files]
        for i in range(n):
            yield files[order[i % len(order)]][i], "benign", lang, "code-prompt"


# Where each source's language label comes from (none is guessed from the text).
LANGUAGE_FROM = {
    "xsafety": "directory name (sp = es)",
    "multijail": "CSV column name",
    "gptfuzz": "the template's language (en); the payload's language is in the category",
    "xcopa": "directory name",
    "ud-pud": "treebank name",
    "wisesight": "the corpus is Thai",
    "korean-chatbot": "the corpus is Korean",
    "humaneval-xl": "file name (the docstring's language; the code around it is a programming language)",
}

# Sources whose rows mix scripts by nature (code around a docstring): no writing-system check.
NO_SCRIPT_CHECK = {"humaneval-xl"}

# Per source: loader, the REPOS keys it reads, and how many rows each (label, language,
# category) cell may keep (None: all). Caps keep one large source from outweighing the rest.
SOURCES = [
    ("xsafety", xsafety, ["xsafety"], {"multiple-choice-question": 100}),
    ("multijail", multijail, ["multijail"], {}),
    ("gptfuzz", gptfuzz, ["gptfuzz", "multijail"], {}),
    ("xcopa", xcopa, ["xcopa"], {"short-statements": 250}),
    ("ud-pud", lambda m: (r for lang in PUD for r in ud_pud(m, lang)), [f"ud-pud-{l}" for l in PUD], {"news-wikipedia-paragraph": 150}),
    ("wisesight", wisesight, ["wisesight"], {"social-question": 300, "social-message": 300}),
    ("korean-chatbot", korean_chatbot, ["korean-chatbot"], {"chat-message": 250}),
    ("humaneval-xl", humaneval_xl, ["humaneval-xl"], {}),
]

# ---------------------------------------------------------------- duplicates and nearness

WORD = re.compile(r"\w+", re.UNICODE)


def norm(text):
    """Case, width, punctuation and whitespace folded: letters and digits of any script,
    single spaces between runs."""
    return " ".join(WORD.findall(unicodedata.normalize("NFKC", text).casefold().replace("_", " ")))


def ngrams8(text):
    toks = norm(text).split()
    return {" ".join(toks[i:i + 8]) for i in range(len(toks) - 7)}


MIN_PER_LABEL = 50  # rows of each label a language needs to stay in the corpus

BLOCK = 20  # a shared stretch of >= 2*BLOCK characters covers one whole aligned block of the reference row


class Near:
    """Answers whether a text is near any reference row: word 8-gram Jaccard >= 0.5, or a
    shared normalised stretch of >= 40 characters. Reference rows are indexed once (aligned
    20-character blocks, 8-grams); a candidate is checked in time linear in its length plus
    the rows it shares a block or 8-gram with."""

    def __init__(self, texts):
        self.rows = [norm(t) for t in texts]
        self.grams = [ngrams8(t) for t in texts]
        self.blocks = collections.defaultdict(list)
        self.gram_index = collections.defaultdict(list)
        for r, s in enumerate(self.rows):
            for j in range(0, len(s) - BLOCK + 1, BLOCK):
                self.blocks[s[j:j + BLOCK]].append((r, j))
            for g in self.grams[r]:
                self.gram_index[g].append(r)

    def near(self, text):
        s = norm(text)
        for i in range(len(s) - BLOCK + 1):
            for r, j in self.blocks.get(s[i:i + BLOCK], ()):
                ref = self.rows[r]
                a, b = i, j
                while a > 0 and b > 0 and s[a - 1] == ref[b - 1]:
                    a, b = a - 1, b - 1
                end_s, end_r = i + BLOCK, j + BLOCK
                while end_s < len(s) and end_r < len(ref) and s[end_s] == ref[end_r]:
                    end_s, end_r = end_s + 1, end_r + 1
                if end_s - a >= 2 * BLOCK:
                    return True
        grams = ngrams8(text)
        if grams:
            for r in {r for g in grams for r in self.gram_index.get(g, ())}:
                other = self.grams[r]
                if len(grams & other) / len(grams | other) >= 0.5:
                    return True
        return False


def load_texts(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mirror", default="/work/.mirror")
    ap.add_argument("--dev", default=os.path.join(SHARED, "injection-dev.jsonl"))
    ap.add_argument("--train", default=os.path.join(SHARED, "injection-train.jsonl"))
    ap.add_argument("--near", action="append", default=[], help="further JSONL files (held-out sets) rows must not come near")
    ap.add_argument("--keep-unpaired", action="store_true", help="keep languages that lack one of the two labels")
    ap.add_argument("--out", default=os.path.join(HERE, "public-multilingual.jsonl"))
    ap.add_argument("--manifest", default=os.path.join(HERE, "public-multilingual.manifest.json"))
    args = ap.parse_args()

    reference = load_texts(args.dev) + [t for p in args.near for t in load_texts(p)]
    near = Near(reference)
    # Exact repeats (after folding) of a reference or shared training row count as duplicates:
    # rows too short for either nearness test are caught here.
    seen = {norm(t) for t in reference}
    if os.path.exists(args.train):
        seen.update(norm(t) for t in load_texts(args.train))

    kept_by_source = []
    for name, loader, keys, caps in SOURCES:
        dropped = collections.Counter()
        cells = collections.defaultdict(list)
        for text, label, lang, cat in loader(args.mirror):
            text = text.strip() if name in NO_SCRIPT_CHECK else text.strip().strip('"').strip()
            key = norm(text)
            if len(key) < 8:
                dropped["too short"] += 1
            elif name not in NO_SCRIPT_CHECK and not script_fits(text, lang):
                dropped["script does not fit the language"] += 1
            elif key in seen:
                dropped["duplicate"] += 1
            elif near.near(text):
                dropped["near a dev or held-out row"] += 1
            else:
                seen.add(key)
                cells[(label, lang, cat)].append({"text": text, "label": label, "source": name, "language": lang, "category": cat})
        rng = random.Random(0)
        kept = []
        for cell in sorted(cells):
            rows = cells[cell]
            cap = caps.get(cell[2])
            if cap is not None and len(rows) > cap:
                dropped["over the cell's cap"] += len(rows) - cap
                rows = rng.sample(rows, cap)
            kept.extend(rows)
        kept_by_source.append((name, keys, kept, dropped))

    # A language present with one label only would teach the model that the language is the
    # label: such languages are left out unless asked for (their rows stay reproducible here).
    per_lang = collections.defaultdict(collections.Counter)
    for _, _, kept, _ in kept_by_source:
        for r in kept:
            per_lang[r["language"]][r["label"]] += 1
    unpaired = {} if args.keep_unpaired else {
        l: dict(c) for l, c in per_lang.items() if min(c["attack"], c["benign"]) < MIN_PER_LABEL}

    corpus, manifest_sources = [], []
    for name, keys, kept, dropped in kept_by_source:
        out = [r for r in kept if r["language"] not in unpaired]
        if len(out) < len(kept):
            dropped["language with under %d rows of either label" % MIN_PER_LABEL] += len(kept) - len(out)
        corpus.extend(out)
        counts = collections.Counter((r["label"], r["language"]) for r in out)
        manifest_sources.append({
            "source": name,
            "language_from": LANGUAGE_FROM[name],
            "repositories": [{"repo": REPOS[k][0], "commit": REPOS[k][1], "licence": REPOS[k][2]} for k in keys],
            "rows": len(out),
            "rows_by_label_language": {f"{l}/{g}": n for (l, g), n in sorted(counts.items())},
            "rows_by_category": dict(sorted(collections.Counter(f"{r['label']}/{r['category']}" for r in out).items())),
            "dropped": dict(sorted(dropped.items())),
        })

    if MISSING:
        # A partial corpus would silently replace the committed one: write nothing.
        print("missing snapshots or files (make these fetch calls, then run again); nothing written:", file=sys.stderr)
        for m in sorted(set(MISSING)):
            print("  " + m, file=sys.stderr)
        sys.exit(1)

    random.Random(0).shuffle(corpus)
    with open(args.out, "w", encoding="utf-8") as f:
        for r in corpus:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    by_lang = collections.defaultdict(collections.Counter)
    for r in corpus:
        by_lang[r["language"]][r["label"]] += 1
    manifest = {
        "file": os.path.basename(args.out),
        "rows": len(corpus),
        "attack": sum(1 for r in corpus if r["label"] == "attack"),
        "benign": sum(1 for r in corpus if r["label"] == "benign"),
        "by_language": {l: dict(sorted(c.items())) for l, c in sorted(by_lang.items())},
        "languages_left_out": dict(sorted(unpaired.items())),
        "sources": manifest_sources,
    }
    with open(args.manifest, "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{len(corpus)} rows ({manifest['attack']} attack) -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
