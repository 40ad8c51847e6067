"""Unmodified Hugging Face ``transformers`` code, used the way research projects use it: a
DeeBERT-style early exit over ``BertLayer``s that raises and catches an exit exception carrying
tensors, the Mixtral sparse MoE block with its per-expert ``continue``, and a ``ModelOutput``
result."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax.testing import assert_same

transformers = pytest.importorskip("transformers")
from transformers import BertConfig, MixtralConfig  # noqa: E402
from transformers.modeling_outputs import BaseModelOutput  # noqa: E402
from transformers.models.bert.modeling_bert import BertLayer, BertPooler  # noqa: E402
from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock  # noqa: E402
from transformers.utils import add_start_docstrings_to_model_forward  # noqa: E402


class HighwayException(Exception):
    def __init__(self, message, exit_layer):
        self.message = message
        self.exit_layer = exit_layer


class BertHighway(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.pooler = BertPooler(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, encoder_outputs):
        pooled_output = self.pooler(encoder_outputs[0])
        logits = self.classifier(pooled_output)
        return logits, pooled_output


def entropy(x):
    exp_x = torch.exp(x)
    A = torch.sum(exp_x, dim=1)
    B = torch.sum(x * exp_x, dim=1)
    return torch.log(A) - B / A


class DeeBertEncoder(nn.Module):
    """DeeBERT's encoder (HF research project, simplified to the early-exit path)."""

    def __init__(self, config):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])
        self.highway = nn.ModuleList([BertHighway(config) for _ in range(config.num_hidden_layers)])
        self.early_exit_entropy = [0.6 for _ in range(config.num_hidden_layers)]

    def forward(self, hidden_states):
        all_highway_exits = ()
        for i, layer_module in enumerate(self.layer):
            layer_outputs = layer_module(hidden_states)
            hidden_states = layer_outputs[0]
            current_outputs = (hidden_states,)
            highway_exit = self.highway[i](current_outputs)
            highway_logits = highway_exit[0]
            highway_entropy = entropy(highway_logits)
            all_highway_exits = all_highway_exits + ((highway_logits, highway_entropy),)
            if highway_entropy < self.early_exit_entropy[i]:
                new_output = (highway_logits,) + current_outputs[1:] + (all_highway_exits,)
                raise HighwayException(new_output, i + 1)
        return BaseModelOutput(last_hidden_state=hidden_states)


class DeeBert(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.encoder = DeeBertEncoder(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, hidden_states):
        try:
            out = self.encoder(hidden_states)
            logits = self.classifier(out.last_hidden_state[:, 0])
            exit_layer = len(self.encoder.layer)
        except HighwayException as e:
            logits = e.message[0]
            exit_layer = e.exit_layer
        return logits, exit_layer


def test_deebert_early_exit_on_hf_bert_layers() -> None:
    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=16,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=2,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = DeeBert(config).eval()
    inputs = [
        torch.randn(1, 4, 16, generator=torch.Generator().manual_seed(seed)) * (0.2 + seed)
        for seed in range(8)
    ]
    # Calibrate the first exit so about half the inputs leave there (as DeeBERT's sweep would).
    with torch.no_grad():
        first = [
            float(entropy(model.encoder.highway[0]((model.encoder.layer[0](x)[0],))[0]))
            for x in inputs
        ]
    model.encoder.early_exit_entropy[0] = sorted(first)[len(first) // 2]
    cm = dycl_jax.convert(model)
    exits = set()
    for x in inputs:
        want = model(x)
        assert_same(cm(x), want, rtol=1e-4, atol=1e-4)
        exits.add(want[1])
    assert len(exits) >= 2, exits


def test_mixtral_sparse_moe_block_unmodified() -> None:
    torch.manual_seed(0)
    config = MixtralConfig(
        hidden_size=16, intermediate_size=32, num_local_experts=4, num_experts_per_tok=2
    )
    block = MixtralSparseMoeBlock(config).eval()
    cm = dycl_jax.convert(block)
    for seed in range(3):
        x = torch.randn(1, 3, 16, generator=torch.Generator().manual_seed(seed))
        assert_same(cm(x), block(x), rtol=1e-4, atol=1e-5)


class ReturnsModelOutput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        h = self.lin(x)
        if h.sum() > 0:
            h = torch.relu(h)
        return BaseModelOutput(last_hidden_state=h, hidden_states=(x, h))


def test_model_output_result() -> None:
    torch.manual_seed(0)
    m = ReturnsModelOutput().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0):
        x = torch.ones(1, 4) * s
        got, want = cm(x), m(x)
        assert type(got) is BaseModelOutput
        assert_same(got.last_hidden_state, want.last_hidden_state)
        assert_same(tuple(got.hidden_states), tuple(want.hidden_states))


def test_unmodified_bert_model_without_attention_mask() -> None:
    """BertModel as users call it: transformers checks ``pad_token_id in input_ids[:, [-1, 0]]``
    (a method of PreTrainedModel, analysed like the model's forward), and its forward carries
    docstring decorators and reaches ``logger.warning_once``."""
    from transformers import BertModel

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, pad_token_id=0,
    )  # fmt: skip
    m = BertModel(cfg).eval()
    cm = dycl_jax.convert(m)
    for ids in ([[5, 6, 7, 8]], [[0, 6, 7, 8]], [[5, 6, 7, 0]]):  # no pad, pad first, pad last
        x = torch.tensor(ids)
        with torch.no_grad():
            want = m(x)
        got = cm(x)
        assert type(got) is type(want)
        assert_same(got.last_hidden_state, want.last_hidden_state)
        assert_same(got.pooler_output, want.pooler_output)


class _DocDecorated(nn.Module):
    """A dynamic forward under transformers' docstring decorator (it returns the function)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    @add_start_docstrings_to_model_forward("Runs the layer twice when the first pass is positive.")
    def forward(self, x):
        h = self.lin(x)
        if h.sum() > 0:
            h = self.lin(h)
        return h


def test_docstring_decorator_on_a_dynamic_forward() -> None:
    torch.manual_seed(0)
    m = _DocDecorated().eval()
    cm = dycl_jax.convert(m)
    for s in (3.0, -3.0):
        x = torch.full((1, 4), s)
        assert_same(cm(x), m(x))


def _decoder_config(name: str, **extra: object) -> object:
    kw: dict[str, object] = {
        "vocab_size": 32, "hidden_size": 8, "intermediate_size": 12, "num_hidden_layers": 2,
        "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 32,
    }  # fmt: skip
    if name == "Phi":
        del kw["num_key_value_heads"]
    return getattr(transformers, f"{name}Config")(**{**kw, **extra})


@pytest.mark.parametrize("name", ["Llama", "Mistral"])
def test_stock_decoder_with_its_default_cache(name: str) -> None:
    """``model(input_ids)`` on a stock decoder of two layers, the default ``use_cache=True``:
    every layer's attention appends to the one ``DynamicCache`` object built in forward
    (``DynamicCache.from_legacy_cache``). That object is a dataclass without fields: it used to be
    copied field by field (an empty new cache) into each region, so the second layer's update
    raised IndexError. Then one decoding step from the returned cache, on calls of growing
    length: a cache built once at capture and handed back on every call would keep growing."""
    torch.manual_seed(0)
    m = getattr(transformers, f"{name}ForCausalLM")(_decoder_config(name)).eval()
    cm = dycl_jax.convert(m)
    for n in (4, 5, 4):
        x = torch.randint(0, 32, (1, n), generator=torch.Generator().manual_seed(n))
        with torch.no_grad():
            want = m(x)
        got = cm(x)
        assert_same(got.logits, want.logits, rtol=1e-4, atol=1e-5)
        assert_same(tuple(got.past_key_values), tuple(want.past_key_values))
        step = want.logits[:, -1:].argmax(-1)
        with torch.no_grad():
            want2 = m(step, past_key_values=want.past_key_values)
        got2 = cm(step, past_key_values=got.past_key_values)
        assert_same(got2.logits, want2.logits, rtol=1e-4, atol=1e-5)
        assert_same(tuple(got2.past_key_values), tuple(want2.past_key_values))


@pytest.mark.parametrize("name", ["Mistral", "Qwen2", "Phi"])
def test_stock_decoder_decoding_into_one_cache_object(name: str) -> None:
    """``cache = DynamicCache()`` passed to every step, as generation loops do: a compiled
    region read the cache's length (position ids) and kept the step it was captured on. A
    larger init makes a stale position visible in the logits."""
    from transformers.cache_utils import DynamicCache

    kw = {"initializer_range": 0.5, "max_position_embeddings": 64}
    torch.manual_seed(0)
    m = getattr(transformers, f"{name}ForCausalLM")(_decoder_config(name, **kw)).eval()
    cm = dycl_jax.convert(m)
    want_cache, got_cache = DynamicCache(), DynamicCache()
    for tokens in ([[3, 7, 1, 9]], [[5]], [[11]], [[2]]):
        x = torch.tensor(tokens)
        with torch.no_grad():
            want = m(x, past_key_values=want_cache, use_cache=True)
        got = cm(x, past_key_values=got_cache, use_cache=True)
        assert_same(got.logits, want.logits, rtol=1e-4, atol=1e-5)
    assert got_cache.get_seq_length() == want_cache.get_seq_length() == 7


class BiasedStep(nn.Module):
    """transformers' SequenceBiasLogitsProcessor in a user's decoding step: it builds its
    ``length_1_bias`` tensor on its first call, on an object the module holds in a
    LogitsProcessorList. Traced, it kept the capture's stand-in (an internal error at the
    next capture)."""

    def __init__(self) -> None:
        from transformers.generation.logits_process import (
            LogitsProcessorList,
            SequenceBiasLogitsProcessor,
        )

        super().__init__()
        self.proj = nn.Linear(4, 12)
        self.procs = LogitsProcessorList([SequenceBiasLogitsProcessor({(7,): 2.0, (3, 9): -3.0})])

    def forward(self, ids, x):
        return self.procs(ids, self.proj(x)).argmax(-1)


def test_a_logits_processor_that_builds_its_state_on_first_use() -> None:
    import copy

    torch.manual_seed(0)
    m = BiasedStep().eval()
    eager = copy.deepcopy(m)  # (its processor builds its state on its own first call)
    cm = dycl_jax.convert(m)
    for ids in ([[3, 9, 4]], [[5, 3, 9, 1]], [[3, 9]]):
        x = torch.randn(1, 4, generator=torch.Generator().manual_seed(len(ids[0])))
        with torch.no_grad():
            want = eager(torch.tensor(ids), x)
        assert_same(cm(torch.tensor(ids), x), want)
