"""Downstream GLUE benchmark: TSV parsing, metrics, Quant-Noise, PQ replacement, end to end on a tiny BERT."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest
import torch
from torch import nn

from pgbench.checkpoints import layer_configs
from pgbench.glue import data
from pgbench.glue.quant_noise import QuantNoise, add_quant_noise, remove_quant_noise
from pgbench.pq import LayerSize, compression_ratio, reconstruct_weight

SHARED_GLUE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "glue"


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------ metrics

def test_metrics_hand_computed():
    pred, gold = [1, 0, 1, 1], [1, 0, 0, 1]
    assert data.accuracy(pred, gold) == 0.75
    assert data.f1_binary(pred, gold) == pytest.approx(0.8)                  # tp 2, fp 1, fn 0
    assert data.matthews_corr(pred, gold) == pytest.approx(2 / math.sqrt(12))  # (2*1 - 1*0) / sqrt(3*2*2*1)
    assert data.matthews_corr([1, 1], [1, 0]) == 0.0                          # undefined -> 0
    assert data.f1_binary([0, 0], [0, 0]) == 0.0
    assert data.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert data.pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # ties get average ranks: x -> [1, 2.5, 2.5, 4], y -> [1, 3, 2, 4]; 4.5 / sqrt(4.5 * 5)
    assert data.spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / math.sqrt(22.5))
    with pytest.raises(ValueError, match="differ in length"):
        data.accuracy([1], [1, 0])


def test_score_per_task():
    assert data.score(data.get_task("mrpc"), [1, 0, 1, 1], [1, 0, 0, 1]) == pytest.approx({"accuracy": 75.0,
                                                                                           "f1": 80.0})
    cola = data.score(data.get_task("CoLA"), [1, 0, 1, 1], [1, 0, 0, 1])
    assert cola["matthews"] == pytest.approx(100 * 2 / math.sqrt(12)) and cola["accuracy"] == 75.0
    stsb = data.score(data.get_task("sts-b"), [1.0, 2.0, 3.0], [2.0, 4.0, 6.5])
    assert set(stsb) == {"pearson", "spearman"} and stsb["spearman"] == pytest.approx(100.0)
    assert data.get_task("sst2").name == "SST-2"
    with pytest.raises(ValueError, match="unknown GLUE task"):
        data.get_task("squad")


# ---------------------------------------------------------------------- TSV files

FILES = {
    "CoLA": "gj04\t1\t\tThe sailors rode.\ngj04\t0\t*\tRode the sailors the.\n",
    "SST-2": "sentence\tlabel\nit 's charming . \t1\nbleak \t0\n",
    "MRPC": "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tHe said \" so .\tHe says so .\n"
            "0\t3\t4\tA b .\tC d .\n",
    "RTE": "index\tsentence1\tsentence2\tlabel\n0\tA man died.\tA man lives.\tnot_entailment\n"
           "1\tIt rains.\tWater falls.\tentailment\n",
    "QNLI": "index\tquestion\tsentence\tlabel\n0\tWhat came?\tThe law came.\tentailment\n",
    "STS-B": "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
             "0\tmain\tMSRvid\t2012\t0001\tnone\tnone\tA plane.\tAn air plane.\t5.000\n"
             "1\tmain\tMSRvid\t2012\t0002\tnone\tnone\tA man.\tA flute.\textra\t0.500\n",
}
EXPECTED = {
    "CoLA": (["The sailors rode.", "Rode the sailors the."], None, [1, 0]),
    "SST-2": (["it 's charming . ", "bleak "], None, [1, 0]),
    "MRPC": (["He said \" so .", "A b ."], ["He says so .", "C d ."], [1, 0]),
    "RTE": (["A man died.", "It rains."], ["A man lives.", "Water falls."], [1, 0]),
    "QNLI": (["What came?"], ["The law came."], [0]),
    "STS-B": (["A plane.", "A man."], ["An air plane.", "A flute."], [5.0, 0.5]),
}


@pytest.mark.parametrize("task", sorted(FILES))
def test_read_tsv_per_task(tmp_path, task):
    spec = data.get_task(task)
    folder = tmp_path / spec.folder
    folder.mkdir()
    (folder / "dev.tsv").write_text(FILES[task], encoding="utf-8")
    (dev,) = data.load_split(tmp_path, task, "dev")           # GLUE root
    (same,) = data.load_split(folder, task, "dev")            # or the task folder itself
    assert (dev.text_a, dev.text_b, dev.labels) == EXPECTED[task]
    assert same.labels == dev.labels
    with pytest.raises(ValueError, match="train file"):
        data.load_split(tmp_path, task, "train")


def test_read_tsv_mnli_two_dev_files_and_errors(tmp_path):
    head = "index\tpromptID\tpairID\tgenre\tp1\tp2\tp3\tp4\tsentence1\tsentence2\tlabel1\tgold_label\n"
    (tmp_path / "MNLI").mkdir()
    (tmp_path / "MNLI" / "dev_matched.tsv").write_text(head + "0\t1\t2\tg\t.\t.\t.\t.\tA.\tB.\tneutral\tneutral\n")
    (tmp_path / "MNLI" / "dev_mismatched.tsv").write_text(head + "0\t1\t2\tg\t.\t.\t.\t.\tC.\tD.\tx\tcontradiction\n")
    matched, mismatched = data.load_split(tmp_path, "MNLI", "dev")
    assert matched.labels == [2] and mismatched.labels == [0] and mismatched.text_b == ["D."]
    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence\tlabel\nfine\t7\n")
    with pytest.raises(ValueError, match=r"bad.tsv:2: label '7'"):
        data.read_tsv(bad, data.get_task("SST-2"))
    bad.write_text("text\tlabel\nfine\t1\n")
    with pytest.raises(ValueError, match="lacks a column"):
        data.read_tsv(bad, data.get_task("SST-2"))


@pytest.mark.skipif(not (SHARED_GLUE / "SST-2" / "dev.tsv").is_file(), reason="shared GLUE data absent")
def test_real_glue_dev_row_counts():
    counts = {"RTE": 277, "MRPC": 408, "SST-2": 872, "QNLI": 5463, "CoLA": 1043, "STS-B": 1500}
    for task, n in counts.items():
        (dev,) = data.load_split(SHARED_GLUE, task, "dev")
        assert len(dev) == n, task


# ---------------------------------------------------------------------- Quant-Noise

def test_quant_noise_blocks_eval_identity_and_gradient():
    torch.manual_seed(0)
    layer = nn.Linear(512, 256)
    original = layer.weight.detach().clone()
    p, b = 0.25, 8
    from torch.nn.utils import parametrize
    parametrize.register_parametrization(layer, "weight", QuantNoise(p, b, seed=3))
    layer.eval()
    assert torch.equal(layer.weight, original)                       # eval: identity
    layer.train()
    noisy = layer.weight.detach()
    blocks = noisy.reshape(256, 512 // b, b)                          # (out, blocks, b)
    ref = original.reshape(256, 512 // b, b)
    dropped = (blocks == 0).all(-1)
    kept_ok = torch.allclose(blocks[~dropped], ref[~dropped] / (1 - p))
    assert kept_ok and abs(dropped.float().mean().item() - p) < 0.02  # ~p of 16384 blocks dropped
    assert not torch.equal(layer.weight.detach(), noisy)              # a fresh mask per forward
    # straight-through: every entry gets the gradient; without STE dropped entries get none
    layer.weight.sum().backward()
    assert torch.equal(layer.parametrizations.weight.original.grad, torch.ones_like(original))
    assert torch.equal(layer.parametrizations.weight.original, original)   # stored weight untouched
    with pytest.raises(ValueError, match="in \\[0, 1\\)"):
        QuantNoise(1.0, 8, 0)


def test_quant_noise_plain_gradient_and_add_remove():
    lin = nn.Linear(16, 4)
    from torch.nn.utils import parametrize
    parametrize.register_parametrization(lin, "weight", QuantNoise(0.5, 4, seed=1, ste=False))
    lin.train()
    w = lin.weight
    w.sum().backward()
    grad = lin.parametrizations.weight.original.grad
    assert torch.equal(grad == 0, w.detach() == 0) and torch.allclose(grad[grad != 0], torch.tensor(2.0))

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_tokens = nn.Embedding(10, 8)
            self.fc1 = nn.Linear(8, 16)
            self.fc2 = nn.Linear(16, 6)      # 6 % 4 is irrelevant: blocks run along the input (16)
            self.head = nn.Linear(6, 2)      # untyped: no noise

    model = Tiny()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    assert add_quant_noise(model, 0.2, 4, seed=0) == ["embed_tokens", "fc1", "fc2"]
    assert add_quant_noise(nn.Linear(4, 4), 0.0, 4) == []
    model.train()
    model.embed_tokens.weight.sum()                                 # rows cut along embedding_dim
    assert remove_quant_noise(model) == 3
    after = dict(model.named_parameters())
    assert all(torch.equal(before[n], after[n]) for n in before)


# -------------------------------------------------------------- tiny BERT fixtures

WORDS = ["good", "great", "fine", "nice", "bad", "awful", "poor", "sad", "movie", "it", "is", "a", "very",
         "the", "film", "plot", "was", "not", "really", "quite"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random BERT folder (hidden 32, 2 layers, 2 heads, FFN 64) and SST-2 TSVs."""
    transformers = pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("glue")
    model_dir = root / "tiny-bert"
    model_dir.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + [f"w{i}" for i in range(43 - len(WORDS))]
    (model_dir / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = transformers.BertTokenizerFast(vocab_file=str(model_dir / "vocab.txt"), do_lower_case=True)
    tok.save_pretrained(model_dir)
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(model_dir)
    gen = torch.Generator().manual_seed(0)
    pos, neg = WORDS[:4], WORDS[4:8]
    filler = WORDS[8:]

    def sentence(label: int) -> str:
        words = [filler[int(i)] for i in torch.randint(len(filler), (4,), generator=gen)]
        words.insert(int(torch.randint(5, (1,), generator=gen)), (pos if label else neg)[int(torch.randint(4, (1,),
                                                                                              generator=gen))])
        return " ".join(words)

    sst = root / "data" / "SST-2"
    sst.mkdir(parents=True)
    for split, n in (("train", 64), ("dev", 24)):
        lines = ["sentence\tlabel"] + [f"{sentence(i % 2)}\t{i % 2}" for i in range(n)]
        (sst / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return {"model": str(model_dir), "data": str(root / "data"), "root": root}


TINY = {"block_sizes": {"embedding": 4, "fc": 4, "attn": 4}, "n_centroids": {"embedding": 8, "fc": 8, "attn": 8}}


def test_quantize_replaces_layers_and_counts_size(tiny):
    from pgbench.glue.finetune import load_pretrained
    from pgbench.glue.quantize import METHODS, model_layers, parse_method, quantize_model

    model, _ = load_pretrained(tiny["model"], data.get_task("SST-2"), seed=0)
    configs = layer_configs("fairseq", **TINY)
    names = [n for n, _, _ in model_layers(model)]
    assert len(names) == 1 + 2 * 6 and names[0] == "bert.embeddings.word_embeddings"
    seen = {}
    report = quantize_model(model, configs, METHODS["pg"], seed=0,
                            on_layer=lambda r, res: seen.__setitem__(r.name, (r, res)))
    params = dict(model.named_parameters())
    sizes = []
    for name, (rep, res) in seen.items():
        w = params[name + ".weight"]
        assert torch.equal(w, reconstruct_weight(res.centroids, res.labels, tuple(w.shape)))
        assert rep.n_empty_final == res.n_empty_final and rep.status == res.status
        sizes.append(LayerSize.from_weight(w, 4, 8))
    total = sum(p.numel() for p in model.parameters())
    other = total - sum(s.n_params for s in sizes)
    assert report.compression_ratio == pytest.approx(compression_ratio(sizes, other))
    assert report.original_mb == pytest.approx(total * 4 / 2 ** 20)
    assert report.n_layers_with_empty == sum(1 for r in report.layers if r.n_empty_final > 0)
    assert parse_method("kmeans++:pg:dwc").consolidate == "dwc"
    with pytest.raises(ValueError, match="unknown method"):
        parse_method("pgg")
    with pytest.raises(ValueError, match="taken by none"):
        parse_method("pg", {"max_tentatives": 3})
    with pytest.raises(ValueError, match="method 'pg': parameter 'patience' of resolve heuristic 'pg' must be int"):
        parse_method("pg", {"patience": 0})
    # a layer whose k-means cannot run (k > sub-vectors) keeps its weight and is an error row
    big = layer_configs("fairseq", block_sizes={"embedding": 4, "fc": 4, "attn": 4},
                        n_centroids={"embedding": 8, "fc": 8, "attn": 10_000})
    bad = quantize_model(model, big, METHODS["fairseq"], regex=r"layer\.0\.attention\.self\.query")
    assert bad.status == "error" and bad.layers[0].error and bad.compression_ratio == pytest.approx(1.0)


def test_end_to_end_grid_store_cache_and_cli(tiny, capsys):
    from pgbench import cli
    from pgbench.glue.finetune import FinetuneConfig
    from pgbench.glue.results import COLUMN_NAMES, DownstreamStore
    from pgbench.glue.run import run_grid

    results, cache = tiny["root"] / "results", tiny["root"] / "cache"
    cfg = FinetuneConfig(epochs=1, batch_size=8, max_length=16, lr=1e-3, quant_noise=0.1, quant_noise_block=4)
    rows = run_grid(tiny["model"], "sst2", tiny["data"], ["fairseq", "pg"], ["fairseq"], finetune=cfg,
                    results=results, cache=cache, progress=False, **TINY)
    assert [r["method"] for r in rows] == ["float", "fairseq", "pg"]
    assert len(list(cache.iterdir())) == 1
    with DownstreamStore(results) as st:
        stored = st.rows()
    assert len(stored) == 3 and list(stored[0]) == list(COLUMN_NAMES)
    for row in stored[1:]:
        assert row["status"] in ("ok", "unresolved", "stopped") and row["metric_name"] == "accuracy"
        assert 0 <= row["accuracy"] <= 100 and row["compression_ratio"] > 1 and row["n_layers"] == 13
        empties = json.loads(row["empty_per_layer"])
        assert len(empties) == 13 and row["n_layers_with_empty"] == sum(v > 0 for v in empties.values())
        assert json.loads(row["layer_types"])["bert.encoder.layer.1.output.dense"] == "fc2"
    # the same cases again: fine-tuned model from the cache, no new rows
    rc = cli.main(["glue", "--model", tiny["model"], "--task", "SST-2", "--data", tiny["data"],
                   "--methods", "faiss", "--presets", "fairseq", "--epochs", "1", "--batch-size", "8",
                   "--max-length", "16", "--lr", "1e-3", "--quant-noise", "0.1", "--quant-noise-block", "4",
                   "--results", str(results), "--cache", str(cache), "--no-progress",
                   "--block-sizes", json.dumps(TINY["block_sizes"]), "--n-centroids", '{"fc": 8, "attn": 8, "embedding": 8}'])
    assert rc == 0
    out = capsys.readouterr().out
    assert "faiss" in out and "float" in out
    assert len(list(cache.iterdir())) == 1                      # reused, not re-trained
    again = run_grid(tiny["model"], "SST-2", tiny["data"], ["fairseq"], ["fairseq"], finetune=cfg,
                     results=results, cache=cache, progress=False, **TINY)
    assert again[1]["row_id"] == rows[1]["row_id"] and again[1]["created_at"] == stored[1]["created_at"]
    con = sqlite3.connect(results / "results.sqlite")
    assert con.execute("SELECT COUNT(*) FROM downstream").fetchone()[0] == 4
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_ipq_stages_keep_codebooks(tiny):
    from pgbench.glue.finetune import FinetuneConfig
    from pgbench.glue.run import DownstreamCase, run_case

    cfg = FinetuneConfig(epochs=1, batch_size=8, max_length=16, lr=1e-3)
    case = DownstreamCase(tiny["model"], "SST-2", tiny["data"], method="fairseq", preset="fairseq",
                          finetune=cfg, ipq_stages=True, stage_epochs=0.5, **TINY)
    row = run_case(case, cache=tiny["root"] / "cache", progress=False)
    assert row["status"] in ("ok", "unresolved", "stopped") and row["ipq_stages"] == 1
    assert row["n_layers"] == 13 and row["accuracy"] is not None


def test_pq_weight_parametrization_trains_codebook():
    from torch.nn.utils import parametrize

    from pgbench.glue.stages import PQWeight, bake
    from pgbench.pq import subvectors_to_weight

    lin = nn.Linear(8, 3)
    centroids = torch.randn(4, 4)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])                       # 3*8/4 = 6 sub-vectors
    parametrize.register_parametrization(lin, "weight", PQWeight(centroids, labels, (3, 8)), unsafe=True)
    assert torch.equal(lin.weight, subvectors_to_weight(centroids[labels], (3, 8)))
    lin.weight.sum().backward()
    grad = lin.parametrizations.weight.original.grad                 # codeword gradient = sum over members
    assert torch.equal(grad, torch.tensor([[2.0] * 4, [2.0] * 4, [1.0] * 4, [1.0] * 4]))
    assert bake(lin) == 1 and isinstance(lin.weight, nn.Parameter) and lin.weight.shape == (3, 8)


def _downstream_suite(tmp_path, tiny, extra: str = "") -> str:
    path = tmp_path / "down.toml"
    path.write_text(f'''
[suite]
name = "down"

[[downstream]]
model = "{tiny['model']}"
task = "SST-2"
data = "{tiny['data']}"
methods = ["fairseq", "pg"]
presets = ["fairseq"]
finetune = {{ epochs = 1, batch_size = 8, max_length = 16, lr = 1e-3 }}
block_sizes = {{ embedding = 4, fc = 4, attn = 4 }}
n_centroids = {{ embedding = 8, fc = 8, attn = 8 }}
{extra}
''')
    return str(path)


def test_a_suite_declares_downstream_cases_and_run_stores_them(tiny, tmp_path, capsys):
    from pgbench import cli
    from pgbench.glue.results import DownstreamStore

    suite = _downstream_suite(tmp_path, tiny)
    assert cli.main(["validate", suite]) == 0
    assert "3 downstream rows (1 fine-tuning runs)" in capsys.readouterr().out
    results = tmp_path / "res"
    assert cli.main(["run", suite, "--results", str(results), "--no-progress"]) == 0
    assert "3 downstream rows: " in capsys.readouterr().out
    with DownstreamStore(results) as st:
        rows = st.rows()
    assert sorted(r["method"] for r in rows) == ["fairseq", "float", "pg"]
    quantized = [r for r in rows if r["method"] != "float"]
    assert all(r["compression_ratio"] > 1 and len(json.loads(r["empty_per_layer"])) == 13 for r in quantized)
    assert cli.main(["run", suite, "--results", str(results), "--no-progress"]) == 0   # resumable: nothing new
    with DownstreamStore(results) as st:
        assert len(st.rows()) == 3


@pytest.mark.parametrize("extra, message", [
    ('colour = "red"', "unknown key 'colour'"),
    ('ipq_stages = "yes"', "ipq_stages"),
])
def test_malformed_downstream_entries_are_one_line_errors(tiny, tmp_path, extra, message):
    from pgbench.suite import load_suite
    from pgbench.suite_values import SuiteError

    with pytest.raises(SuiteError, match=message) as info:
        load_suite(_downstream_suite(tmp_path, tiny, extra))
    assert "\n" not in str(info.value) and "down.toml" in str(info.value)


def test_unknown_downstream_method_or_missing_model(tiny, tmp_path):
    from pgbench.suite import load_suite
    from pgbench.suite_values import SuiteError

    text = (tmp_path / "down.toml").read_text() if (tmp_path / "down.toml").exists() else \
        open(_downstream_suite(tmp_path, tiny)).read()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('"pg"]', '"pgg"]'))
    with pytest.raises(SuiteError, match="unknown method"):
        load_suite(bad)
    gone = tmp_path / "gone.toml"
    gone.write_text(text.replace(tiny["model"], str(tmp_path / "nope")))
    with pytest.raises(SuiteError, match="no model folder"):
        load_suite(gone)
    gone.write_text(gone.read_text() + "optional = true\n")
    assert load_suite(gone).downstream[0].unavailable.startswith("no model folder")
