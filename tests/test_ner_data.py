"""NER data path: readers (good and bad input), tag schemes, subword alignment, windows, CRF decoding."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from graftkit.config import DataConfig
from graftkit.errors import DataError
from graftkit.tasks.ner import preprocess
from graftkit.tasks.ner.postprocess import Decoder, stitch, to_entities
from graftkit.tasks.ner.config import NerConfig
from graftkit.tasks.ner.readers import detect_ner_format, read_ner, split_words
from graftkit.tasks.ner.schemes import (allowed_transitions, detect_scheme, is_valid, label_list, spans_to_tags,
                                        tags_to_spans)

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
"""


def cfg(**kw) -> DataConfig:
    return DataConfig(train="unused", **kw)


def ner(**kw) -> NerConfig:
    """The ner task's section: the file settings (tag_column, file_scheme, strip_segment_digit, repair_tags)."""
    return NerConfig(**kw)


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


def spans_of(e):
    return [(e.text[s:t], typ) for s, t, typ in e.label]


# -- readers --------------------------------------------------------------------------------------------
def test_conll_reader(tmp_path):
    path = write(tmp_path, "a.conll", CONLL)
    examples, scheme = read_ner(path, cfg())
    assert scheme == "IOB2" and len(examples) == 2
    assert examples[0].text == "EU rejects German call ."
    assert spans_of(examples[0]) == [("EU", "ORG"), ("German", "MISC")]
    assert examples[1].label == [[0, 15, "PER"]] and examples[1].line == 9
    # the tag column is selectable: column 2 holds chunk tags
    chunks, _ = read_ner(path, cfg(), ner(tag_column=2))
    assert spans_of(chunks[0])[0] == ("EU", "NP")


def test_conll_bad_input(tmp_path):
    path = write(tmp_path, "bad.conll", "EU NNP B-ORG\nrejects VBZ\n")
    with pytest.raises(DataError, match=r"bad.conll, line 2: token 'rejects': 2 columns, but line 1 has 3"):
        read_ner(path, cfg())
    with pytest.raises(DataError, match=r"line 1: task.tag_column=-3 does not name a tag column"):
        read_ner(path, cfg(), ner(tag_column=-3))
    path = write(tmp_path, "i.conll", "the O\nUnion I-ORG\n")
    with pytest.raises(DataError, match=r"i.conll, line 2: token 'Union': 'I-ORG' continues no ORG entity .*IOB2"):
        read_ner(path, cfg(), ner(file_scheme="IOB2"))
    path = write(tmp_path, "t.conll", "EU ORG\n")
    with pytest.raises(DataError, match=r"t.conll, line 1: token 'EU': tag 'ORG' is not valid"):
        read_ner(path, cfg())


def test_repair_mode_reports_every_repair(tmp_path, caplog):
    path = write(tmp_path, "r.conll", "the O\nUnion I-ORG\nsaid O\n\nhi x y\nEU B-ORG\nx I-LOC\n")
    with caplog.at_level(logging.WARNING, logger="graftkit.ner"):
        examples, _ = read_ner(path, cfg(), ner(repair_tags=True, file_scheme="IOB2"))
    repairs = [r.getMessage() for r in caplog.records]
    assert len(repairs) == 3
    assert any("line 2: token 'Union'" in r and "started one here" in r for r in repairs)
    assert any("line 5: token 'hi': 3 columns" in r and "line skipped" in r for r in repairs)
    assert any("line 7: token 'x': 'I-LOC' continues no LOC entity" in r for r in repairs)
    assert spans_of(examples[0]) == [("Union", "ORG")]
    assert spans_of(examples[1]) == [("EU", "ORG"), ("x", "LOC")]


def test_iob1_and_bioes_and_bmes_files(tmp_path):
    iob1 = write(tmp_path, "a.iob1", "Peter I-PER\nPaul B-PER\nsaw O\nBonn I-LOC\n")
    ex, scheme = read_ner(iob1, cfg())
    assert scheme == "IOB1" and spans_of(ex[0]) == [("Peter", "PER"), ("Paul", "PER"), ("Bonn", "LOC")]
    bioes = write(tmp_path, "a.bioes", "New B-LOC\nYork E-LOC\nand O\nBonn S-LOC\n")
    ex, scheme = read_ner(bioes, cfg())
    assert scheme == "BIOES" and spans_of(ex[0]) == [("New York", "LOC"), ("Bonn", "LOC")]
    bad = write(tmp_path, "b.bioes", "New B-LOC\nYork I-LOC\nand O\n")
    with pytest.raises(DataError, match=r"line 3: token 'and': the LOC entity is not closed with E-LOC"):
        read_ner(bad, cfg(), ner(file_scheme="BIOES"))


def test_char_per_line_chinese_with_segment_digits(tmp_path):
    text = "北0\tB-GPE.NAM\n京1\tI-GPE.NAM\n欢0\tO\n迎1\tO\np10\tO\n\n李0\tB-PER.NAM\n"
    path = write(tmp_path, "weibo.train", text)
    c = ner(strip_segment_digit=True)
    assert detect_ner_format(path, cfg(), c) == "char_conll"
    ex, _ = read_ner(path, cfg(), c)
    assert ex[0].text == "北京欢迎p" and spans_of(ex[0]) == [("北京", "GPE.NAM")]
    assert ex[0].extra["words"] == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    with pytest.raises(DataError, match=r"line 1: token '北': task.strip_segment_digit expects"):
        read_ner(write(tmp_path, "plain.txt", "北\tO\n京\tO\n"), cfg(), c)


def test_spans_jsonl_reader(tmp_path):
    rows = [{"text": "Angela Merkel visited Munich.", "entities": [{"start": 0, "end": 13, "label": "PER"},
                                                                     {"start": 22, "end": 28, "label": "LOC"}]},
            {"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]}]
    path = write(tmp_path, "s.jsonl", "\n".join(json.dumps(r) for r in rows))
    ex, scheme = read_ner(path, cfg())
    assert scheme == "spans"
    assert spans_of(ex[0]) == [("Angela Merkel", "PER"), ("Munich", "LOC")]
    assert ex[0].text[slice(*ex[0].extra["words"][-1])] == "."  # punctuation is its own word
    assert spans_of(ex[1]) == [("EU", "ORG")]
    for bad, msg in [({"text": "abc", "entities": [{"start": 1, "end": 9, "label": "X"}]}, "outside the text"),
                     ({"text": "abcdef", "entities": [{"start": 0, "end": 4, "label": "X"},
                                                      {"start": 2, "end": 6, "label": "Y"}]}, "overlaps"),
                     ({"tokens": ["a", "b"], "tags": ["O"]}, "2 tokens but 1 tags")]:
        p = write(tmp_path, "bad.jsonl", json.dumps({"text": "ok", "entities": []}) + "\n" + json.dumps(bad))
        with pytest.raises(DataError, match=rf"bad.jsonl, line 2.*{msg}"):
            read_ner(p, cfg())


def test_cluener_reader_and_span_inside_word(tmp_path):
    row = {"text": "浙商银行叶老桂说CSOL好", "label": {"company": {"浙商银行": [[0, 3]]}, "name": {"叶老桂": [[4, 6]]},
                                                   "game": {"SOL": [[9, 11]]}}}
    path = write(tmp_path, "c.json", json.dumps(row, ensure_ascii=False))
    ex, _ = read_ner(path, cfg())
    assert spans_of(ex[0]) == [("浙商银行", "company"), ("叶老桂", "name"), ("SOL", "game")]
    # "CSOL" is cut at the entity boundary so that the span maps back exactly
    assert [ex[0].text[s:e] for s, e in ex[0].extra["words"]][-3:] == ["C", "SOL", "好"]
    bad = dict(row, label={"name": {"叶老": [[4, 6]]}})
    with pytest.raises(DataError, match=r"c2.json, line 1, field 'label': entity '叶老' \(name\) at \[4, 6\] reads '叶老桂'"):
        read_ner(write(tmp_path, "c2.json", json.dumps(bad, ensure_ascii=False)), cfg())


def test_real_files_parse(shared_data):
    ex, scheme = read_ner(str(shared_data / "weibo_ner" / "weiboNER_2nd_conll.dev"),
                          cfg(), ner(strip_segment_digit=True, repair_tags=True))
    assert scheme == "IOB2" and len(ex) == 270
    ex, _ = read_ner(str(shared_data / "cluener2020" / "dev.json"), cfg())
    assert len(ex) == 1343 and sum(len(e.label) for e in ex) == 3072


def test_the_ner_formats_are_registered_by_the_ner_folder_and_read_by_the_task(tmp_path):
    from graftkit.data.readers import READERS, read_rows
    from graftkit.tasks.ner import NerTask
    from graftkit.tasks.ner.readers import FORMATS

    assert {n: READERS.get(n).task for n in FORMATS} == {n: "ner" for n in FORMATS}
    assert READERS.get("csv").task is None
    path = write(tmp_path, "a.conll", CONLL)
    with pytest.raises(DataError, match="data format 'conll' is read by the ner task, not as rows"):
        read_rows(path, "conll")
    with pytest.raises(DataError, match="data.format 'csv' is not an NER format; use one of: auto, conll"):
        read_ner(path, cfg(format="csv"))
    # the task reads its files with its own section's settings (task.tag_column: column 2 holds chunk tags)
    examples, _ = NerTask(ner(tag_column=2)).read(path, cfg(format="conll"))
    assert spans_of(examples[0])[0] == ("EU", "NP")


# -- schemes --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["IOB1", "IOB2", "BIOES", "BMES"])
def test_scheme_round_trip(scheme):
    spans = [(0, 2, "PER"), (2, 3, "PER"), (4, 5, "LOC"), (6, 9, "ORG"), (9, 10, "ORG")]
    tags = spans_to_tags(10, spans, scheme)
    assert tags_to_spans(tags, scheme) == spans
    assert detect_scheme([tags]) == ("IOB2" if scheme == "IOB2" else scheme)
    # and across schemes through spans
    for other in ("IOB1", "IOB2", "BIOES", "BMES"):
        assert tags_to_spans(spans_to_tags(10, tags_to_spans(tags, scheme), other), other) == spans


def test_spans_to_tags_examples():
    assert spans_to_tags(4, [(0, 2, "PER"), (3, 4, "LOC")], "BIOES") == ["B-PER", "E-PER", "O", "S-LOC"]
    assert spans_to_tags(3, [(0, 1, "PER"), (1, 3, "PER")], "IOB1") == ["I-PER", "B-PER", "I-PER"]


# -- alignment and windows --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_first_piece_alignment(tokenizer):
    words = ["Angela", "unbelievablyness", "visited", "北", "京"]
    text = " ".join(words)
    offsets, pos = [], 0
    for w in words:
        offsets.append((pos, pos + len(w)))
        pos += len(w) + 1
    labels = label_list(["LOC", "PER"], "IOB2")
    l2i = {t: i for i, t in enumerate(labels)}
    gold = [[0, 23, "PER"], [32, 35, "LOC"]]  # "Angela unbelievablyness", "北 京"
    cols = preprocess.build_features([(text, offsets)], [gold], tokenizer, 64, 8, False, "IOB2", l2i)
    pieces = tokenizer.convert_ids_to_tokens(cols["input_ids"][0])
    got = [(p, labels[x] if x != -100 else None) for p, x in zip(pieces, cols["labels"][0])]
    assert got[0] == ("[CLS]", None) and got[-1] == ("[SEP]", None)
    long_word = [g for g in got if g[0].startswith("##")]
    assert len(long_word) >= 2 and all(lab is None for _, lab in long_word)  # later pieces: -100
    assert [g for g in got if g[1]] == [("angela", "B-PER"), ("un", "I-PER"), ("visited", "O"), ("北", "B-LOC"),
                                        ("京", "I-LOC")]
    all_cols = preprocess.build_features([(text, offsets)], [gold], tokenizer, 64, 8, True, "IOB2", l2i)
    tagged = [labels[x] for x in all_cols["labels"][0] if x != -100]
    assert tagged[:2] == ["B-PER", "I-PER"] and tagged.count("I-PER") == 1 + len(long_word)


def test_windows_cover_long_sentence_and_stitch_back(tokenizer):
    words = [f"w{i}" if i % 5 else "Paris" for i in range(60)]  # ~2 pieces per word → several windows
    text = " ".join(words)
    offsets = split_words(text)
    gold = [[s, e, "LOC"] for (s, e), w in zip(offsets, words) if w == "Paris"]
    labels = label_list(["LOC"], "IOB2")
    l2i = {t: i for i, t in enumerate(labels)}
    cols = preprocess.build_features([(text, offsets)], [gold], tokenizer, 24, 6, False, "IOB2", l2i)
    assert len(cols["input_ids"]) > 3 and max(len(r) for r in cols["input_ids"]) <= 24
    enc, windows = preprocess.tokenize_windows([[text[s:e] for s, e in offsets]], tokenizer, 24, 6, False)
    covered = {k[0] for w in windows for _, k in w.units}
    assert covered == set(range(len(words)))  # nothing truncated away
    # logits that mark exactly the gold words as B-LOC; decoding must return the gold spans
    width = max(len(r) for r in enc["input_ids"])
    logits = np.zeros((len(windows), width, len(labels)), np.float32)
    for row, win in enumerate(windows):
        for pos, key in win.units:
            logits[row, pos, l2i["B-LOC"] if words[key[0]] == "Paris" else l2i["O"]] = 5.0
    (keys, scores), = stitch(logits, windows, 1)
    assert [k[0] for k in keys] == list(range(len(words)))
    path = Decoder(labels, "IOB2")([scores])[0]
    ents = to_entities(text, offsets, keys, scores, path, labels, "IOB2")
    assert [[e.start, e.end, e.label] for e in ents] == gold
    assert all(e.text == "Paris" and 0 < e.score <= 1 for e in ents)


def test_window_labels_restart_entity_cut_by_window():
    win = preprocess.Window(sample=0, units=[(1, (3, 0, 2)), (2, (4, 0, 2)), (3, (5, 0, 3))])
    labels = label_list(["PER"], "BIOES")
    l2i = {t: i for i, t in enumerate(labels)}
    out = preprocess.window_labels(win, 5, [(2, 6, "PER")], "BIOES", l2i)  # entity starts before the window
    assert [labels[x] if x != -100 else None for x in out] == [None, "B-PER", "I-PER", "E-PER", None]


# -- CRF ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["IOB2", "BIOES"])
def test_crf_decoding_never_emits_invalid_sequences(scheme):
    labels = label_list(["LOC", "ORG", "PER"], scheme)
    rng = np.random.default_rng(0)
    n = len(labels)
    # adversarial scores: transitions and emissions that favour invalid moves
    trans = rng.normal(size=(n, n)) * 5
    start, end, ok = allowed_transitions(labels, scheme)
    trans[~ok] += 50.0
    dec = Decoder(labels, scheme, (rng.normal(size=n) + 20 * ~start, rng.normal(size=n) + 20 * ~end, trans))
    scores = [rng.normal(size=(int(rng.integers(1, 15)), n)).astype(np.float32) * 10 for _ in range(200)]
    for path in dec(scores):
        assert is_valid(path, labels, scheme), [labels[t] for t in path]
    for path in Decoder(labels, scheme)(scores):  # linear head: constrained decoding as well
        assert is_valid(path, labels, scheme)


def test_crf_model_pins_forbidden_transitions(tiny_model_dir):
    from graftkit.tasks.ner.head import TokenClassifier

    from transformers import AutoConfig

    labels = label_list(["PER"], "IOB2")
    config = AutoConfig.from_pretrained(tiny_model_dir)
    for k, v in {"num_labels": 3, "id2label": dict(enumerate(labels)), "label2id": {t: i for i, t in enumerate(labels)},
                 "use_crf": True, "tag_scheme": "IOB2"}.items():
        setattr(config, k, v)
    model = TokenClassifier.from_pretrained(tiny_model_dir, config=config).eval()
    assert type(model).__name__ == "BertForTokenClassificationWithCrf"
    with torch.no_grad():
        model.crf.transitions.fill_(3.0)  # try to make O → I-PER attractive
    ids = torch.tensor([[101, 2000, 2001, 2002, 102]])
    gold = torch.tensor([[-100, 0, 1, 2, -100]])
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=gold)
    assert model.crf.transitions[0, 2] < -1000 and model.crf.start_transitions[2] < -1000
    assert torch.isfinite(out.loss) and out.tags[0, 0] == -100
    assert is_valid(out.tags[0, 1:4].tolist(), labels, "IOB2")


def test_unseen_entity_type_is_reported(caplog):
    from graftkit.tasks.ner.config import NerConfig
    from graftkit.data.dataset import Example
    from graftkit.tasks.ner import NerTask

    task = NerTask(NerConfig())
    task.fit([Example("Bob ran", [[0, 3, "PER"]], extra={"words": [(0, 3), (4, 7)]})])
    assert task.labels == ["O", "B-PER", "I-PER"]
    with caplog.at_level(logging.WARNING, logger="graftkit.ner"):
        task.check([Example("in Oslo", [[3, 7, "LOC"]], path="test.jsonl", line=3, extra={"words": [(0, 2), (3, 7)]})])
    assert "test.jsonl, line 3: entity type 'LOC' does not occur in the training data" in caplog.text
    with pytest.raises(DataError, match="holds no entities"):
        task.fit([Example("nothing here", [], path="x.conll", extra={"words": [(0, 7), (8, 12)]})])


def test_window_labels_name_tags_outside_the_label_set():
    win = preprocess.Window(sample=0, units=[(1, (0, 0, 3))])
    l2i = {t: i for i, t in enumerate(label_list(["PER"], "IOB2"))}
    with pytest.raises(ValueError, match=r"\['B-LOC'\] have no id in the label set"):
        preprocess.window_labels(win, 3, [(0, 1, "LOC")], "IOB2", l2i)


def test_unseen_validation_type_is_tagged_o_with_a_warning_and_refused_in_training(tokenizer, caplog):
    """A validation type absent from training is tagged O with a warning (it once raised a raw KeyError in
    window_labels)."""
    from graftkit.data.dataset import Example
    from graftkit.tasks.ner import NerTask
    from graftkit.tasks.capabilities import TrainsWithTrainer
    from graftkit.tasks.ner.config import NerConfig

    task = NerTask(NerConfig())
    task.fit([Example("Bob ran", [[0, 3, "PER"]], extra={"words": [(0, 3), (4, 7)]})])
    training = task.capability(TrainsWithTrainer, "train")
    val = [Example("Bob in Oslo", [[0, 3, "PER"], [7, 11, "LOC"]], path="dev.jsonl", line=2,
                   extra={"words": [(0, 3), (4, 6), (7, 11)]})]
    with caplog.at_level(logging.WARNING, logger="graftkit.ner"):
        ds = training.build_eval_dataset(val, tokenizer, 32)
    tags = [task.labels[x] for x in ds["labels"][0] if x != -100]
    assert tags == ["B-PER", "O", "O"]  # Bob, in, Oslo: the unseen LOC becomes O, PER is kept
    assert "1 'LOC' entities tagged O" in caplog.text
    with pytest.raises(DataError, match="dev.jsonl, line 2: entity type 'LOC' is not in the label set"):
        training.build_dataset(val, tokenizer, 32)


def test_report_gives_unseen_gold_types_their_own_rows():
    from graftkit.data.dataset import Example
    from graftkit.tasks.ner import metrics
    from graftkit.tasks.predictions import EntitiesPrediction, Entity

    ex = [Example("Bob in Oslo", [[0, 3, "PER"], [7, 11, "LOC"]], extra={"words": [(0, 3), (4, 6), (7, 11)]})]
    pred = [EntitiesPrediction([Entity(label="PER", start=0, end=3, text="Bob", score=1.0)])]
    out = metrics.report(ex, pred, ["PER"], "IOB2", None, plots=False)
    assert out["per_class"]["LOC"]["recall"] == 0.0 and out["per_class"]["PER"]["f1-score"] == 1.0
    assert out["recall"] == 0.5
    names, cm = out["type_confusion"]["labels"], np.array(out["type_confusion"]["matrix"])
    assert cm[names.index("LOC"), names.index("O")] == 1  # a missed LOC, not an O→O count
