"""xpuruntime.interop.transformers.patch on tiny random-weight Hugging Face models (configs
built here, nothing downloaded), float32 on the CPU: loss, logits and every parameter
gradient patched against unpatched, the xpuruntime ops in the torch profiler while
patched and none after unpatch, idempotence, instance scope, errors."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import xpuruntime.interop.transformers as xtr  # noqa: E402
from conftest import assert_close, to_numpy  # noqa: E402
from xpuruntime import _spec  # noqa: E402
from xpuruntime.interop.torch._registration import op_name  # noqa: E402

VOCAB, BATCH, SEQ = 96, 2, 12
COMMON = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
              num_attention_heads=4, max_position_embeddings=64, attn_implementation="eager")
GQA = dict(COMMON, num_key_value_heads=2)


def _config(name, **kw):
    cls = getattr(transformers, name, None)
    if cls is None:
        pytest.skip(f"{name} is not in transformers {transformers.__version__}")
    return cls(**kw)


# family -> (config class, causal LM class, config arguments, xpuruntime ops expected)
LLAMA_OPS = {"rms_norm", "swiglu", "rope"}
FAMILIES = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", GQA, LLAMA_OPS),
    "mistral": ("MistralConfig", "MistralForCausalLM", dict(GQA, sliding_window=None), LLAMA_OPS),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", GQA, LLAMA_OPS),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", dict(GQA, head_dim=8), LLAMA_OPS),
    "gemma": ("GemmaConfig", "GemmaForCausalLM",
              dict(GQA, head_dim=8, hidden_act="gelu_pytorch_tanh",
                   hidden_activation="gelu_pytorch_tanh"), {"rms_norm", "geglu", "rope"}),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM",
               dict(GQA, head_dim=8, final_logit_softcapping=None), {"rms_norm", "geglu", "rope"}),
    "gemma3": ("Gemma3TextConfig", "Gemma3ForCausalLM",
               dict(GQA, head_dim=8, final_logit_softcapping=None, sliding_window=4),
               {"rms_norm", "geglu", "rope"}),
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM",
                 dict(COMMON, rotary_pct=0.5, partial_rotary_factor=0.5, use_parallel_residual=True),
                 {"layer_norm", "rope"}),
}


def build(family, seed=0):
    config_name, model_name, kw, _ = FAMILIES[family]
    config = _config(config_name, **kw)
    torch.manual_seed(seed)
    model = getattr(transformers, model_name)(config).float()
    with torch.no_grad():  # Gemma's norms start at zero weight: give every parameter values
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def batch(seed=1):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (BATCH, SEQ), generator=gen)
    labels = ids.clone()
    labels[0, :3] = -100  # a prompt that does not count
    return ids, labels


def train_step(model, ids, labels, **kw):
    """(loss, logits, {name: grad}) of one forward and backward; with the profiler's op names."""
    model.zero_grad(set_to_none=True)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        out = model(input_ids=ids, labels=labels, **kw)
        out.loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    names = {e.key for e in prof.key_averages()}
    logits = None if out.logits is None else out.logits.detach()
    return out.loss.detach(), logits, grads, names


def xpuruntime_ops(names):
    return {n.split("::", 1)[1] for n in names if n.startswith("xpuruntime::")}


def assert_same(got, ref, logits=True):
    loss, out_logits, grads, _ = got
    assert_close(to_numpy(loss), to_numpy(ref[0]), "float32", "loss")
    if logits:
        assert_close(to_numpy(out_logits), to_numpy(ref[1]), "float32", "logits")
    assert grads.keys() == ref[2].keys()
    for name, g in grads.items():
        assert_close(to_numpy(g), to_numpy(ref[2][name]), "float32", f"grad {name}")


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("fused", [False, True])
def test_patched_matches_unpatched(family, fused):
    model, (ids, labels) = build(family), batch()
    ref = train_step(model, ids, labels)
    assert not xpuruntime_ops(ref[3])

    assert xtr.patch(model, fused_linear_cross_entropy=fused) is model
    got = train_step(model, ids, labels)
    assert_same(got, ref, logits=not fused)
    expected = FAMILIES[family][3] | {"cross_entropy"}
    # The backward ops by their registered names (rms_norm_backward_v2: the spec's revision).
    backward = {op_name(_spec.get(op, _spec.BACKWARD)) for op in expected}
    assert expected | backward <= xpuruntime_ops(got[3])
    if fused:
        assert got[1] is None and xtr.patched(model)["fused_linear_cross_entropy"] == 1
        logits = model(input_ids=ids).logits  # without labels: the logits, as before
        assert_close(to_numpy(logits), to_numpy(ref[1]), "float32", "logits without labels")

    xtr.unpatch(model)
    after = train_step(model, ids, labels)
    assert not xpuruntime_ops(after[3]) and xtr.patched(model) == {}
    assert torch.equal(after[0], ref[0]) and torch.equal(after[1], ref[1])
    assert all(torch.equal(after[2][n], g) for n, g in ref[2].items())


def test_num_items_in_batch_and_tuple_outputs():
    model, (ids, labels) = build("llama"), batch()
    items = (labels[:, 1:] != -100).sum() + 5  # as gradient accumulation passes it
    ref = train_step(model, ids, labels, num_items_in_batch=items)
    for fused in (False, True):
        xtr.patch(model, fused_linear_cross_entropy=fused)
        assert_same(train_step(model, ids, labels, num_items_in_batch=items), ref, logits=not fused)
        out = model(input_ids=ids, labels=labels, return_dict=False)
        assert_close(to_numpy(out[0]), to_numpy(model(input_ids=ids, labels=labels).loss),
                     "float32", "tuple loss")
    xtr.unpatch(model)


def test_only_the_patched_instance_changes():
    a, b = build("llama"), build("llama")
    ids, labels = batch()
    ref = train_step(b, ids, labels)
    xtr.patch(a)
    assert xpuruntime_ops(train_step(a, ids, labels)[3])
    other = train_step(b, ids, labels)
    assert not xpuruntime_ops(other[3]) and torch.equal(other[0], ref[0])
    xtr.unpatch(a)


def test_idempotent():
    model = build("qwen2")
    xtr.patch(model)
    counts = xtr.patched(model)
    forwards = {name: m.__dict__.get("forward") for name, m in model.named_modules()}
    assert xtr.patch(model) is model and xtr.patched(model) == counts
    assert forwards == {name: m.__dict__.get("forward") for name, m in model.named_modules()}
    assert counts == {"rms_norm": 5, "mlp": 2, "rope": 2, "cross_entropy": 1}
    xtr.patch(model, rope=False)  # other options: re-patched, not stacked
    assert "rope" not in xtr.patched(model) and xtr.patched(model)["rms_norm"] == 5
    xtr.unpatch(model)
    xtr.unpatch(model)
    assert all("forward" not in m.__dict__ for m in model.modules())
    assert "_loss_function" not in model.__dict__


def test_nothing_to_patch_lists_what_is_supported():
    with pytest.raises(ValueError, match="nothing to patch in Sequential.*Supported: RMSNorm of Llama"):
        xtr.patch(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU()))
    model = build("llama")
    with pytest.raises(ValueError, match="nothing to patch in LlamaForCausalLM"):
        xtr.patch(model, rms_norm=False, mlp=False, rope=False, cross_entropy=False)
    assert xtr.patched(model) == {} and all("forward" not in m.__dict__ for m in model.modules())


def test_soft_capped_logits_refuse_the_fused_loss():
    config = _config("Gemma2Config", **dict(GQA, head_dim=8, final_logit_softcapping=30.0))
    model = transformers.Gemma2ForCausalLM(config)
    with pytest.raises(ValueError, match="soft-capped"):
        xtr.patch(model, fused_linear_cross_entropy=True)
    assert all("forward" not in m.__dict__ for m in model.modules())
    xtr.patch(model)  # the unfused loss takes the capped logits as they are
    assert xtr.patched(model)["cross_entropy"] == 1


def _hf_rope(family="llama"):
    return __import__(f"transformers.models.{family}.modeling_{family}",
                      fromlist=["apply_rotary_pos_emb"]).apply_rotary_pos_emb


def _rope_inputs(batch_tables=1, seq=10, heads=3, dim=16):
    gen = torch.Generator().manual_seed(3)
    q = torch.randn(2, seq, heads, dim, generator=gen).transpose(1, 2).requires_grad_()
    k = torch.randn(2, seq, heads, dim, generator=gen).transpose(1, 2).requires_grad_()
    pos = torch.arange(seq, dtype=torch.float32)[None].repeat(batch_tables, 1)
    pos = pos + torch.arange(batch_tables)[:, None] * 5
    freqs = pos[..., None] / (100.0 ** (torch.arange(0, dim, 2) / dim))
    emb = torch.cat([freqs, freqs], dim=-1)
    return q, k, emb.cos(), emb.sin()


@pytest.mark.parametrize("tables", [1, 2])
def test_rope_head_major_without_copies(tables):
    """q, k [B, H, S, D] as attention makes them (a transposed projection): xpuruntime's
    rope reads them through their strides, and the head-major gradient too."""
    from xpuruntime.interop.transformers import _rope
    original = _hf_rope()
    ours = _rope.rope_function(original)
    q, k, cos, sin = _rope_inputs(tables)
    dq, dk = torch.randn(q.shape), torch.randn(k.shape)  # dense [B, H, S, D], as SDPA returns
    ref = original(q, k, cos, sin)
    ref_grads = torch.autograd.grad(ref, (q, k), (dq, dk))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        out = ours(q, k, cos, sin)
        grads = torch.autograd.grad(out, (q, k), (dq, dk))
    names = {e.key for e in prof.key_averages()}
    for o, r in zip(out + grads, ref + ref_grads):
        assert o.shape == r.shape
        assert_close(to_numpy(o), to_numpy(r), "float32")
    if tables == 1:
        assert {"xpuruntime::rope", "xpuruntime::rope_backward"} <= names
        assert not names & {"aten::clone", "aten::copy_", "aten::contiguous", "aten::cat"}, names
    else:  # per-example tables (position_ids [B, S]): the original path, same numbers
        assert not xpuruntime_ops(names)
