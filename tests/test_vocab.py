"""Vocabulary extension (graftkit/modeling/vocab.py): which tokens are added, how their rows start."""
from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer, BertForMaskedLM, BertModel

from graftkit.config import ExtendVocabConfig
from graftkit.errors import ConfigError, DataError
from graftkit.modeling.vocab import add_tokens, auto_tokens, extend_vocab, unk_rate

# 彭 and 军 are [UNK] to the bundled uncased WordPiece vocabulary; 认 too, but it occurs only once
TEXTS = ["彭军认为 pharmacokinetics matters", "彭军说 pharmacokinetics", "彭军来了", "hello world"]


@pytest.fixture
def tok(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_unk_rate_counts_unknown_characters(tok):
    assert unk_rate(tok, ["hello world"]) == 0.0
    assert unk_rate(tok, ["彭军"]) == 1.0
    assert unk_rate(tok, ["彭 ab"]) == pytest.approx(1 / 3)


def test_auto_adds_unknown_characters_and_split_words_above_min_count(tok):
    assert tok.unk_token_id in tok("认", add_special_tokens=False)["input_ids"]
    tokens = auto_tokens(tok, TEXTS, ExtendVocabConfig(source="auto", min_count=2))
    assert tokens[:2] == ["军", "彭"]  # characters first, most frequent first (ties: alphabetical)
    assert "pharmacokinetics" in tokens  # 2 occurrences, 3+ known pieces
    assert "认" not in tokens and "hello" not in tokens  # once only / already a single token
    assert auto_tokens(tok, TEXTS, ExtendVocabConfig(source="auto", min_count=2, words=False)) == ["军", "彭"]


def test_extension_keeps_old_rows_and_starts_words_at_the_mean_of_their_pieces(tiny_model_dir, tok):
    model = BertForMaskedLM.from_pretrained(tiny_model_dir)
    old_in = model.get_input_embeddings().weight.detach().clone()
    old_bias = model.cls.predictions.bias.detach().clone()
    pieces = tok("pharmacokinetics", add_special_tokens=False)["input_ids"]
    report = extend_vocab(model, tok, TEXTS, ExtendVocabConfig(source="auto", min_count=2), log=lambda m: None)
    assert report.added == ["军", "彭", "pharmacokinetics"]
    assert report.unk_before > 0.1 and report.unk_after < report.unk_before
    new_in = model.get_input_embeddings().weight
    assert new_in.shape[0] == len(tok) == old_in.shape[0] + 3
    assert torch.equal(new_in[: old_in.shape[0]], old_in)
    word = tok.convert_tokens_to_ids("pharmacokinetics")
    assert torch.allclose(new_in[word], old_in[pieces].mean(0))
    out = model.get_output_embeddings()
    assert out.weight.data_ptr() == new_in.data_ptr()  # still tied after the resize
    assert model.cls.predictions.bias.shape[0] == len(tok)
    assert torch.equal(model.cls.predictions.bias[: old_bias.shape[0]], old_bias)
    assert model.config.vocab_size == len(tok)
    assert tok.tokenize("彭军 pharmacokinetics") == ["彭", "军", "pharmacokinetics"]


def test_words_match_only_whole_words(tiny_model_dir, tok):
    add_tokens(BertModel.from_pretrained(tiny_model_dir), tok, ["kinetics"])
    assert "kinetics" in tok.tokenize("the kinetics of it")
    assert "kinetics" not in tok.tokenize("pharmacokinetics")


def test_token_file(tiny_model_dir, tok, tmp_path):
    path = tmp_path / "tokens.txt"
    path.write_text("彭\n\n军\n彭\nhello\n", encoding="utf-8")
    report = extend_vocab(BertModel.from_pretrained(tiny_model_dir), tok, TEXTS, ExtendVocabConfig(source=str(path)),
                          log=lambda m: None)
    assert report.added == ["彭", "军"]  # "hello" is already in the vocabulary; the repeat counts once


@pytest.mark.parametrize("content", ["", "\n  \n"])
def test_empty_token_file_is_an_error(tiny_model_dir, tok, tmp_path, content):
    path = tmp_path / "tokens.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match="tokens.txt.*holds no tokens"):
        extend_vocab(BertModel.from_pretrained(tiny_model_dir), tok, TEXTS, ExtendVocabConfig(source=str(path)))


def test_unreadable_token_file_is_an_error(tiny_model_dir, tok, tmp_path):
    path = tmp_path / "tokens.txt"
    path.write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(DataError, match="cannot read"):
        extend_vocab(BertModel.from_pretrained(tiny_model_dir), tok, TEXTS, ExtendVocabConfig(source=str(path)))
    with pytest.raises(DataError, match="missing.txt"):
        extend_vocab(BertModel.from_pretrained(tiny_model_dir), tok, TEXTS,
                     ExtendVocabConfig(source=str(tmp_path / "missing.txt")))


def test_model_without_resizable_embedding_is_an_error(tok):
    class NoEmbedding(torch.nn.Module):
        def get_input_embeddings(self):
            raise NotImplementedError

    with pytest.raises(ConfigError, match="no resizable input embedding"):
        extend_vocab(NoEmbedding(), tok, TEXTS, ExtendVocabConfig(source="auto"))


def test_high_unk_rate_warns_and_names_the_switch(tiny_model_dir, tok):
    lines = []
    extend_vocab(BertModel.from_pretrained(tiny_model_dir), tok, TEXTS, ExtendVocabConfig(), log=lines.append)
    assert any("WARNING" in m and "model.extend_vocab: auto" in m for m in lines)
    lines.clear()
    extend_vocab(BertModel.from_pretrained(tiny_model_dir), tok, ["hello world"], ExtendVocabConfig(), log=lines.append)
    assert not any("WARNING" in m for m in lines)


def test_saved_tokenizer_and_model_reload_identically(tiny_model_dir, tok, tmp_path):
    model = BertModel.from_pretrained(tiny_model_dir).eval()
    extend_vocab(model, tok, TEXTS, ExtendVocabConfig(source="auto", min_count=2), log=lambda m: None)
    model.save_pretrained(tmp_path / "run")
    tok.save_pretrained(tmp_path / "run")
    tok2 = AutoTokenizer.from_pretrained(tmp_path / "run")
    model2 = BertModel.from_pretrained(tmp_path / "run").eval()
    for text in TEXTS:
        assert tok2.tokenize(text) == tok.tokenize(text)
    batch = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(model(**batch).last_hidden_state, model2(**batch).last_hidden_state, atol=1e-6)


def test_run_folder_keeps_the_added_tokens_for_every_later_command(tmp_path, tiny_model_dir):
    """Train with extend_vocab: auto; the folder's tokenizer, the Predictor, plain transformers, an ensemble
    and a run continued from the folder all see the same tokens and agree on the predictions."""
    from transformers import AutoModelForSequenceClassification

    from conftest import run_config, write_csv
    from graftkit.inference.predictor import Predictor
    from graftkit.io import read_json
    from graftkit.train.ensemble import build_ensemble
    from graftkit.train.trainer import train

    rows = [["彭军认为很好", "pos"], ["彭军说不好", "neg"], ["军人很好", "pos"], ["彭说不行", "neg"]] * 4
    data = write_csv(tmp_path / "train.csv", rows)
    lines: list[str] = []
    cfg = run_config(tmp_path, tiny_model_dir, data, model={"name_or_path": tiny_model_dir, "extend_vocab": "auto"},
                     train={"max_steps": 4})
    run = train(cfg, log=lines.append)
    assert any("extend_vocab (auto): added" in m for m in lines)
    vocab = read_json(run.path / "training_setup.json")["vocab"]
    assert vocab["tokens_added"] >= 2 and vocab["unk_rate_after"] < vocab["unk_rate_before"]
    tok = AutoTokenizer.from_pretrained(run.path)
    assert tok.tokenize("彭军") == ["彭", "军"]
    texts = [r[0] for r in rows[:4]]
    preds = Predictor(run.path).predict(texts)
    model = AutoModelForSequenceClassification.from_pretrained(run.path).eval()
    with torch.no_grad():
        probs = model(**tok(texts, padding=True, return_tensors="pt")).logits.softmax(-1)
    # the Predictor may divide the logits by a fitted temperature; the decision is the same
    assert [p.label for p in preds] == [model.config.id2label[int(i)] for i in probs.argmax(-1)]
    # a second run continued from the folder adds nothing: the tokens are already there
    lines.clear()
    again = run_config(tmp_path, str(run.path), data, name="again", train={"max_steps": 2},
                       model={"name_or_path": str(run.path), "extend_vocab": "auto"})
    train(again, log=lines.append)
    assert any("added 0 tokens" in m for m in lines)
    assert len(AutoTokenizer.from_pretrained(tmp_path / "runs" / "again")) == len(tok)
    ens = tmp_path / "runs" / "ens"
    build_ensemble([run.path, tmp_path / "runs" / "again"], ens, log=lambda m: None)
    assert AutoTokenizer.from_pretrained(ens).tokenize("彭军") == ["彭", "军"]
    assert len(Predictor(ens).predict(texts)) == 4


def test_vocab_command_shows_the_unk_rate_and_the_new_tokens(tmp_path, tiny_model_dir):
    import yaml
    from typer.testing import CliRunner

    from conftest import write_csv
    from graftkit.cli import app

    data = write_csv(tmp_path / "train.csv", [["彭军认为", "a"], ["彭军说", "b"]] * 3)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": {"train": str(data), "split": {"validation": 0.0, "test": 0.0}},
                                      "model": {"name_or_path": tiny_model_dir}}), encoding="utf-8")
    result = CliRunner().invoke(app, ["vocab", str(config)])
    assert result.exit_code == 0, result.output
    assert "[UNK] rate of the training text: 100.00%" in result.output
    # each occurs at least min_count (2) times: most frequent first, ties in code-point order
    assert "extend_vocab auto: 5 new tokens: 军 彭 为 认 说" in result.output
