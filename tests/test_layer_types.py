"""Layer typing of every transformer family, on tiny random models saved with ``save_pretrained``.

Each family's model is built offline from its transformers config class (hidden 16,
one layer, vocabulary 50), its parameters refilled from a seeded generator so that
every weight is unique, and saved in a temporary folder.  Per family we pin, by
hand, how many layers of each type come out and which 2-D weights stay untyped;
then every typed layer is checked against the module that owns it: the module's
output (bias removed) on random inputs must equal ``x @ layer.weight.T`` on the
layer's rows, which holds only if ``layer.weight`` is the ``(out, in)`` matrix that
fairseq's PQ reshape expects (GPT-2's ``Conv1D`` stores ``(in, out)``).
"""

from __future__ import annotations

import json
import logging

import pytest
import torch

from pgbench import layer_types as lt
from pgbench import sources
from pgbench.checkpoints import classify, layer_type, load_checkpoint, select_layers
from pgbench.cli import main
from pgbench.pq import weight_to_subvectors

transformers = pytest.importorskip("transformers")
nn = torch.nn

H, FFN = 16, 32
_ENC = dict(hidden_size=H, num_hidden_layers=1, num_attention_heads=2, intermediate_size=FFN, vocab_size=50,
            max_position_embeddings=20)
_DEC = dict(hidden_size=H, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
            intermediate_size=FFN, vocab_size=50)
_POS = "embeddings.position_embeddings"
_ATTN = ("attn_q", "attn_k", "attn_v", "attn_out")


def counts(**extra: int) -> dict[str, int]:
    """One layer of every type (the embedding, q, k, v, out, fc1, fc2), changed by ``extra``."""
    base = {"embedding": 1, **{t: 1 for t in _ATTN}, "fc1": 1, "fc2": 1}
    base.update(extra)
    return {t: n for t, n in base.items() if n}


# name -> (config class, config kwargs, expected type counts, expected untyped 2-D weights)
FAMILIES = {
    "bert": ("BertConfig", _ENC, counts(), {_POS, "embeddings.token_type_embeddings", "pooler.dense"}),
    "roberta": ("RobertaConfig", {**_ENC, "pad_token_id": 1}, counts(),
                {_POS, "embeddings.token_type_embeddings", "pooler.dense"}),
    "electra": ("ElectraConfig", {**_ENC, "embedding_size": 8}, counts(),
                {_POS, "embeddings.token_type_embeddings", "embeddings_project"}),
    "albert": ("AlbertConfig", {**_ENC, "embedding_size": 8}, counts(),
               {_POS, "embeddings.token_type_embeddings", "encoder.embedding_hidden_mapping_in", "pooler"}),
    "distilbert": ("DistilBertConfig", dict(dim=H, n_layers=1, n_heads=2, hidden_dim=FFN, vocab_size=50,
                                            max_position_embeddings=20), counts(), {_POS}),
    "mpnet": ("MPNetConfig", _ENC, counts(), {_POS, "encoder.relative_attention_bias", "pooler.dense"}),
    "deberta-v2": ("DebertaV2Config", {**_ENC, "relative_attention": True, "pos_att_type": ["p2c", "c2p"],
                                       "share_att_key": False, "position_buckets": 8},
                   counts(attn_q=2, attn_k=2), {_POS, "encoder.rel_embeddings"}),
    "gpt2": ("GPT2Config", dict(n_embd=H, n_layer=1, n_head=2, vocab_size=50, n_positions=20, bos_token_id=0,
                                eos_token_id=0, add_cross_attention=True),
             counts(attn_q=2, attn_k=2, attn_v=2, attn_out=2), {"wpe"}),
    "llama": ("LlamaConfig", _DEC, counts(fc1=2), set()),
    "mistral": ("MistralConfig", _DEC, counts(fc1=2), set()),
    "qwen2": ("Qwen2Config", _DEC, counts(fc1=2), set()),
    "t5": ("T5Config", dict(d_model=H, d_kv=8, d_ff=FFN, num_layers=1, num_decoder_layers=1, num_heads=2,
                            vocab_size=50), counts(**{t: 3 for t in _ATTN}, fc1=2, fc2=2),
           {"encoder.block.0.layer.0.SelfAttention.relative_attention_bias",
            "decoder.block.0.layer.0.SelfAttention.relative_attention_bias"}),
    "t5-gated": ("T5Config", dict(d_model=H, d_kv=8, d_ff=FFN, num_layers=1, num_decoder_layers=1, num_heads=2,
                                  vocab_size=50, feed_forward_proj="gated-gelu"),
                 counts(**{t: 3 for t in _ATTN}, fc1=4, fc2=2),
                 {"encoder.block.0.layer.0.SelfAttention.relative_attention_bias",
                  "decoder.block.0.layer.0.SelfAttention.relative_attention_bias"}),
    "vit": ("ViTConfig", dict(hidden_size=H, num_hidden_layers=1, num_attention_heads=2, intermediate_size=FFN,
                              image_size=8, patch_size=4), counts(embedding=0), {"pooler.dense"}),
}


def build(family: str, folder, config_json: bool = True):
    """The tiny model of ``family``, every parameter refilled from a seeded generator, saved in ``folder``."""
    cls_name, kwargs, _, _ = FAMILIES[family]
    cls = getattr(transformers, cls_name, None)
    if cls is None:
        pytest.skip(f"transformers {transformers.__version__} has no {cls_name}")
    model = transformers.AutoModel.from_config(cls(**kwargs))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    model.save_pretrained(folder)
    if not config_json:
        (folder / "config.json").unlink()
    return model.eval()


def owner(model, stored: torch.Tensor):
    """The module whose parameter equals ``stored`` (values are unique: saved names may differ from modules')."""
    for name, p in model.named_parameters():
        if p.shape == stored.shape and torch.equal(p.detach(), stored):
            return model.get_submodule(name.rsplit(".", 1)[0])
    raise AssertionError("no module holds this tensor")


def type_counts(layers) -> dict[str, int]:
    out: dict[str, int] = {}
    for layer in layers:
        out[layer.layer_type] = out.get(layer.layer_type, 0) + 1
    return out


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_attention_and_ffn_weight_is_typed_in_its_module_orientation(family, tmp_path):
    model = build(family, tmp_path)
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.model_type == model.config.model_type
    sel = classify(ckpt)
    assert (sel.family, sel.basis) == (model.config.model_type, "config.json")
    _, _, expected, untyped = FAMILIES[family]
    assert type_counts(sel.layers) == expected
    assert set(sel.untyped) == untyped
    g = torch.Generator().manual_seed(1)
    for layer in sel.layers:
        module = owner(model, ckpt.tensors[layer.param])
        if isinstance(module, nn.Embedding):
            assert layer.layer_type == "embedding" and torch.equal(layer.weight, module.weight)
            continue
        x = torch.randn(3, layer.weight.shape[1], generator=g)                       # (batch, in)
        with torch.no_grad():
            y = module(x) - (module.bias if module.bias is not None else 0)           # (batch, out_total)
        rows = slice(*layer.rows) if layer.rows else slice(None)
        torch.testing.assert_close(y[:, rows], x @ layer.weight.T, msg=layer.name)
        assert layer.transposed == (family == "gpt2")


def test_gpt2_fused_attention_splits_into_named_thirds(tmp_path):
    build("gpt2", tmp_path)
    ckpt = load_checkpoint(tmp_path)
    stored = ckpt.tensors["h.0.attn.c_attn.weight"]                                  # (in, 3 * out)
    assert stored.shape == (H, 3 * H)
    q, k, v = select_layers(ckpt, r"h\.0\.attn\.c_attn")
    assert [(x.name, x.layer_type, x.rows) for x in (q, k, v)] == [
        ("h.0.attn.c_attn:q", "attn_q", (0, H)), ("h.0.attn.c_attn:k", "attn_k", (H, 2 * H)),
        ("h.0.attn.c_attn:v", "attn_v", (2 * H, 3 * H))]
    assert torch.equal(q.weight, stored[:, :H].T) and torch.equal(v.weight, stored[:, 2 * H:].T)
    (kv_v,) = select_layers(ckpt, r"crossattention\.c_attn:v")                      # cross-attention: k, v only
    assert kv_v.rows == (H, 2 * H)
    (only_q,) = select_layers(ckpt, r"c_attn:q")
    assert only_q.name == "h.0.attn.c_attn:q"


def test_gpt2_layers_reach_the_source_and_a_dump_as_out_in(tmp_path):
    from pgbench.dump import dump_layers

    build("gpt2", tmp_path / "gpt2")
    stored = load_checkpoint(tmp_path / "gpt2").tensors
    sets = {ds.name: ds for ds in sources.load("checkpoint", path=str(tmp_path / "gpt2"), layers="mlp|attn.c_attn")}
    fc1 = sets["h.0.mlp.c_fc"]
    assert fc1.weight_shape == (4 * H, H) and fc1.meta["transposed"] is True and "rows" not in fc1.meta
    assert torch.equal(fc1.X, weight_to_subvectors(stored["h.0.mlp.c_fc.weight"].T, 8))
    k = sets["h.0.attn.c_attn:k"]
    assert k.meta["rows"] == [H, 2 * H] and torch.equal(k.X, weight_to_subvectors(stored["h.0.attn.c_attn.weight"][:, H:2 * H].T, 4))
    out = tmp_path / "dump.safetensors"
    manifest = dump_layers(tmp_path / "gpt2", "mlp|attn.c_attn", out)
    entry = next(e for e in manifest["layers"] if e["name"] == "h.0.attn.c_attn:k")
    assert entry["param"] == "h.0.attn.c_attn:k.weight" and entry["source_param"] == "h.0.attn.c_attn.weight"
    assert entry["rows"] == [H, 2 * H] and entry["transposed"] is True and entry["shape"] == [H, H]
    again = {ds.name: ds for ds in sources.load("checkpoint", path=str(out))}
    assert list(again) == list(sets)
    assert all(torch.equal(again[n].X, sets[n].X) and again[n].layer_type == sets[n].layer_type for n in sets)
    assert "manifest" in str(pytest.raises(ValueError, select_layers, load_checkpoint(out), "",
                                           {"x": "fc1"}).value)


@pytest.mark.parametrize("family", ["gpt2", "mpnet", "llama", "t5"])
def test_without_config_json_the_names_pick_the_family(family, tmp_path):
    model = build(family, tmp_path, config_json=False)
    sel = classify(load_checkpoint(tmp_path))
    assert (sel.family, sel.basis) == (model.config.model_type, "names")
    assert type_counts(sel.layers) == FAMILIES[family][2]


def test_untyped_weights_are_named_in_one_warning_line(tmp_path, caplog):
    build("electra", tmp_path)
    with caplog.at_level(logging.WARNING, logger="pgbench.checkpoints"):
        select_layers(load_checkpoint(tmp_path), "")
        select_layers(load_checkpoint(tmp_path), "")                                  # once per process
    (record,) = caplog.records
    message = record.getMessage()
    assert "\n" not in message and "3 2-D weights left untyped" in message and "electra rules" in message
    assert "embeddings_project" in message and "layer_types" in message


def test_a_suites_layer_types_come_first(tmp_path):
    build("electra", tmp_path)
    ckpt = load_checkpoint(tmp_path)
    sel = classify(ckpt, "", {r"embeddings_project$": "fc1", r"intermediate\.dense$": "fc2"})
    types = {layer.name: layer.layer_type for layer in sel.layers}
    assert types["embeddings_project"] == "fc1" and types["encoder.layer.0.intermediate.dense"] == "fc2"
    assert "embeddings_project" not in sel.untyped
    split = classify(ckpt, "intermediate", {r"intermediate\.dense$": "a=fc1,b=fc1"}).layers
    assert [(x.name, x.rows) for x in split] == [("encoder.layer.0.intermediate.dense:a", (0, FFN // 2)),
                                                  ("encoder.layer.0.intermediate.dense:b", (FFN // 2, FFN))]
    with pytest.raises(ValueError, match="32 rows do not split into 3 equal blocks"):
        classify(ckpt, "", {r"intermediate\.dense$": "a=fc1,b=fc1,c=fc1"})


@pytest.mark.parametrize("spec, fragment", [
    ("conv", "unknown layer type 'conv'"),
    ("", "unknown layer type ''"),
    ("q=attn_q,attn_k", "distinct SUFFIX=TYPE"),
    ("q=attn_q,q=attn_k", "distinct SUFFIX=TYPE"),
    ("q=attn_q", "write the type alone"),
])
def test_bad_specs_fail_on_one_line(spec, fragment):
    with pytest.raises(ValueError) as err:
        lt.parse_rule("x", spec)
    assert fragment in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ValueError, match="invalid regex"):
        lt.parse_rule("fc[", "fc1")


def test_family_rules_are_valid_and_types_known():
    for family, rules in lt.FAMILY_RULES.items():
        for rule in lt.family_rules(family):
            assert all(kind in lt.LAYER_TYPES for _, kind in rule.parts), (family, rule.regex)
    # the defaults (no family) keep BERT-style and fairseq names
    assert layer_type("bert.encoder.layer.0.attention.self.query") == "attn_q"
    assert layer_type("decoder.layers.0.encoder_attn.out_proj") == "attn_out"
    assert layer_type("h.0.attn.c_attn", "gpt2") is None                               # split: no single type
    assert layer_type("h.0.mlp.c_proj", "gpt2") == "fc2"


def _suite(tmp_path, params: str) -> str:
    path = tmp_path / "s.toml"
    path.write_text(f"""
[[methods]]
init = "random"
resolve = "faiss"

[[sources]]
name = "checkpoint"
label = "tiny"
params = {{ {params} }}
""")
    return str(path)


def test_layer_types_are_checked_when_the_suite_loads(tmp_path, capsys):
    from pgbench.suite import SuiteError, load_suite

    for rules, fragment in [("{ 'fc[' = 'fc1' }", "invalid regex"), ("{ 'x' = 'conv' }", "unknown layer type"),
                            ("{}, layers = 'fc['", "invalid layers regex")]:
        # the file does not exist: the rules are checked before anything loads
        with pytest.raises(SuiteError) as err:
            load_suite(_suite(tmp_path, f"path = '{tmp_path}/none', layer_types = {rules}"))
        assert fragment in str(err.value) and "\n" not in str(err.value) and "'tiny'" in str(err.value)


def test_validate_list_shows_typed_and_untyped_weights(tmp_path, capsys):
    build("gpt2", tmp_path / "gpt2")
    suite = _suite(tmp_path, f"path = '{tmp_path}/gpt2', layers = 'h\\.0\\.(attn|mlp)|wpe', n_centroids = {{ attn = 4, fc = 4 }}")
    assert main(["validate", suite, "--list"]) == 0
    out = capsys.readouterr().out
    assert "(gpt2 rules from config.json): 6 typed layers, 1 untyped 2-D weights" in out
    assert "typed    attn_q    h.0.attn.c_attn:q" in out and "rows 0:16 of h.0.attn.c_attn.weight" in out
    assert "untyped  -         wpe" in out


def test_checkpoint_case_ids_hash_the_content_not_the_path(tmp_path):
    import shutil

    from pgbench.cases import expand
    from pgbench.suite import load_suite

    build("llama", tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")

    def ids(folder: str, extra: str = "") -> list[str]:
        suite = _suite(tmp_path, f"path = '{tmp_path}/{folder}', n_centroids = {{ embedding = 4, attn = 4, fc = 4 }}"
                                 + extra)
        return [c.case_id for c in expand(load_suite(suite)).cases]

    assert len(ids("a")) == 8 and ids("a") == ids("b")                     # a copy elsewhere: same ids
    bound = sources.get_source("checkpoint").bind({"path": str(tmp_path / "a")})
    hashed = sources.id_params("checkpoint", bound)
    assert "layer_types" not in hashed and hashed["path"].startswith("sha256:")   # absent while empty
    assert ids("a", ", layer_types = { 'embed_tokens' = 'embedding' }") != ids("a")
    data = bytearray((tmp_path / "b" / "model.safetensors").read_bytes())
    data[-1] ^= 1                                                         # one weight changed: new ids
    (tmp_path / "b" / "model.safetensors").write_bytes(bytes(data))
    assert not set(ids("b")) & set(ids("a"))


def test_glue_quantizes_gpt2_blocks_in_place_as_out_in(tmp_path):
    from pgbench.checkpoints import layer_configs
    from pgbench.glue.quantize import METHODS, model_layers, quantize_model

    model = build("gpt2", tmp_path)
    layers = {name: (w, kind) for name, w, kind in model_layers(model, r"h\.0\.attn\.c_attn")}
    param = model.get_parameter("h.0.attn.c_attn.weight")                             # (in, 3 * out)
    assert list(layers) == ["h.0.attn.c_attn:q", "h.0.attn.c_attn:k", "h.0.attn.c_attn:v"]
    assert torch.equal(layers["h.0.attn.c_attn:k"][0], param.detach()[:, H:2 * H].T)
    before = param.detach().clone()
    configs = layer_configs("fairseq", n_centroids={"attn": 2})
    report = quantize_model(model, configs, METHODS["faiss"], regex=r"h\.0\.attn\.c_attn:v")
    (row,) = report.layers
    assert row.shape == (H, H) and row.status != "error"
    changed = (param.detach() != before).any(dim=0)                                    # per output column
    assert changed[2 * H:].all() and not changed[:2 * H].any()                          # only v's columns
