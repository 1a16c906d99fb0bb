#!/usr/bin/python3
"""Writes one tiny random model folder per supported family, with logits and loss computed here.

The forward pass below is written from the published architecture descriptions (the transformers
modeling files' math, restated in numpy) in float64; it shares no code with QuantPeft. Each folder
holds config.json, model.safetensors (float32) and expected.json (input ids, logits, mean next-token
cross-entropy). Run with Debian's python3 and python3-numpy: /usr/bin/python3 make_families.py
"""
import json
import math
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
IDS = [[3, 17, 0, 31, 9, 44, 12, 5, 28, 40], [5, 5, 22, 1, 30, 47, 8, 19, 2, 36]]


def write_safetensors(path, tensors):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, value in tensors.items():
        raw = np.ascontiguousarray(value, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(value.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def rms_norm(x, w, eps, unit_offset):
    normed = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return normed * ((1.0 + w) if unit_offset else w)


def inverse_frequencies(theta, dim, scaling, seq_len=0):
    inv = np.array([1.0 / theta ** (2.0 * i / dim) for i in range(dim // 2)])
    inv = inv.astype(np.float32).astype(np.float64) if scaling is None else inv
    if scaling is None:
        return inv
    kind = scaling.get("rope_type") or scaling["type"]
    if kind == "longrope":
        # Phi-3: per-frequency divisors, the long list once the sequence is longer than the original context.
        ext = scaling["long_factor"] if seq_len > scaling["original_max_position_embeddings"] else scaling["short_factor"]
        out = inv / np.array(ext)
    elif kind == "linear":
        out = inv / scaling["factor"]
    elif kind == "llama3":
        factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
        old = scaling["original_max_position_embeddings"]
        out = []
        for f in inv:
            wavelen = 2 * math.pi / f
            if wavelen < old / high:
                out.append(f)
            elif wavelen > old / low:
                out.append(f / factor)
            else:
                smooth = (old / wavelen - low) / (high - low)
                out.append((1 - smooth) * f / factor + smooth * f)
        out = np.array(out)
    else:
        raise ValueError(kind)
    return out.astype(np.float32).astype(np.float64)


def rotate(x, inv, cos_sin_scale=1.0):
    # x (T, D); the first R = 2 len(inv) dims rotate, pairs (i, i + R/2) sharing angle pos * inv[i]; the rest pass through.
    t, d = x.shape
    r = 2 * len(inv)
    ang = np.outer(np.arange(t), inv)
    cos = np.cos(np.concatenate([ang, ang], 1)) * cos_sin_scale
    sin = np.sin(np.concatenate([ang, ang], 1)) * cos_sin_scale
    xr, rest = x[:, :r], x[:, r:]
    half = r // 2
    rot = np.concatenate([-xr[:, half:], xr[:, :half]], 1)
    return np.concatenate([xr * cos + rot * sin, rest], 1)


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def silu(x):
    return x / (1.0 + np.exp(-x))


class Family:
    def __init__(self, name, config, tied, qk_norm=False, gemma=False, qkv_bias=False, fused=False):
        self.name, self.config, self.tied, self.qk_norm, self.gemma, self.qkv_bias = name, config, tied, qk_norm, gemma, qkv_bias
        self.fused = fused

    def head_dim(self):
        c = self.config
        return c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]

    def window_of(self, layer):
        c = self.config
        if c.get("sliding_window") is None:
            return None
        types = c.get("layer_types")
        if types is not None:
            return c["sliding_window"] if types[layer] == "sliding_attention" else None
        return c["sliding_window"]

    def tensors(self, rng):
        c = self.config
        h, inter, d = c["hidden_size"], c["intermediate_size"], self.head_dim()
        nq, nkv, v = c["num_attention_heads"], c["num_key_value_heads"], c["vocab_size"]
        norm = (lambda n: 0.2 * rng.uniform(-1, 1, n)) if self.gemma else (lambda n: 1 + 0.2 * rng.uniform(-1, 1, n))
        mat = lambda o, i: 0.4 * rng.uniform(-1, 1, (o, i)) / math.sqrt(i) * 2
        t = {"model.embed_tokens.weight": rng.uniform(-1, 1, (v, h)) * (0.2 if self.gemma else 1.0)}
        for l in range(c["num_hidden_layers"]):
            p = f"model.layers.{l}."
            t[p + "input_layernorm.weight"] = norm(h)
            t[p + "self_attn.q_proj.weight"] = mat(nq * d, h)
            t[p + "self_attn.k_proj.weight"] = mat(nkv * d, h)
            t[p + "self_attn.v_proj.weight"] = mat(nkv * d, h)
            t[p + "self_attn.o_proj.weight"] = mat(h, nq * d)
            if self.qkv_bias:
                for n, size in (("q", nq * d), ("k", nkv * d), ("v", nkv * d)):
                    t[p + f"self_attn.{n}_proj.bias"] = 0.1 * rng.uniform(-1, 1, size)
            if self.qk_norm:
                t[p + "self_attn.q_norm.weight"] = norm(d)
                t[p + "self_attn.k_norm.weight"] = norm(d)
            t[p + "post_attention_layernorm.weight"] = norm(h)
            if self.gemma:
                t[p + "pre_feedforward_layernorm.weight"] = norm(h)
                t[p + "post_feedforward_layernorm.weight"] = norm(h)
            t[p + "mlp.gate_proj.weight"] = mat(inter, h)
            t[p + "mlp.up_proj.weight"] = mat(inter, h)
            t[p + "mlp.down_proj.weight"] = mat(h, inter)
            if self.fused:
                # Phi-3 stores q, k, v stacked by rows in qkv_proj and gate above up in gate_up_proj.
                parts = [t.pop(p + f"self_attn.{n}_proj.weight") for n in "qkv"]
                t[p + "self_attn.qkv_proj.weight"] = np.concatenate(parts, 0)
                parts = [t.pop(p + f"mlp.{n}_proj.weight") for n in ("gate", "up")]
                t[p + "mlp.gate_up_proj.weight"] = np.concatenate(parts, 0)
        t["model.norm.weight"] = norm(h)
        if not self.tied:
            t["lm_head.weight"] = mat(v, h)
        # Stored as float32; the reference computes from exactly the stored values.
        return {k: np.asarray(x, dtype=np.float32) for k, x in t.items()}

    def forward(self, w, ids):
        c = self.config
        w = {k: x.astype(np.float64) for k, x in w.items()}
        h, d = c["hidden_size"], self.head_dim()
        nq, nkv = c["num_attention_heads"], c["num_key_value_heads"]
        eps = c["rms_norm_eps"]
        g = self.gemma
        scale = (c["query_pre_attn_scalar"] if g else d) ** -0.5
        attn_cap = c.get("attn_logit_softcapping") if g else None
        rot_dim = int(d * c.get("partial_rotary_factor", 1.0))
        scaling = c.get("rope_scaling")
        cos_sin_scale = 1.0
        if scaling is not None and scaling.get("type") == "longrope":
            scaling = dict(scaling, original_max_position_embeddings=c["original_max_position_embeddings"])
            s_factor = c["max_position_embeddings"] / c["original_max_position_embeddings"]
            cos_sin_scale = math.sqrt(1 + math.log(s_factor) / math.log(c["original_max_position_embeddings"])) if s_factor > 1 else 1.0
        global_inv = inverse_frequencies(c.get("rope_theta", 10000.0), rot_dim, scaling, seq_len=len(ids))
        local_inv = inverse_frequencies(c["rope_local_base_freq"], d, None) if "rope_local_base_freq" in c else global_inv
        if self.fused:
            w = dict(w)
            for l in range(c["num_hidden_layers"]):
                p = f"model.layers.{l}."
                qkv, gu = w.pop(p + "self_attn.qkv_proj.weight"), w.pop(p + "mlp.gate_up_proj.weight")
                w[p + "self_attn.q_proj.weight"] = qkv[:nq * d]
                w[p + "self_attn.k_proj.weight"] = qkv[nq * d:(nq + nkv) * d]
                w[p + "self_attn.v_proj.weight"] = qkv[(nq + nkv) * d:]
                w[p + "mlp.gate_proj.weight"] = gu[:c["intermediate_size"]]
                w[p + "mlp.up_proj.weight"] = gu[c["intermediate_size"]:]
        x = w["model.embed_tokens.weight"][ids]
        if g:
            x = x * math.sqrt(h)
        T = len(ids)
        for l in range(c["num_hidden_layers"]):
            p = f"model.layers.{l}."
            window = self.window_of(l)
            inv = local_inv if window is not None else global_inv
            a_in = rms_norm(x, w[p + "input_layernorm.weight"], eps, g)
            q = a_in @ w[p + "self_attn.q_proj.weight"].T
            k = a_in @ w[p + "self_attn.k_proj.weight"].T
            v = a_in @ w[p + "self_attn.v_proj.weight"].T
            if self.qkv_bias:
                q, k, v = q + w[p + "self_attn.q_proj.bias"], k + w[p + "self_attn.k_proj.bias"], v + w[p + "self_attn.v_proj.bias"]
            heads = []
            for hq in range(nq):
                hk = hq // (nq // nkv)
                qh, kh, vh = q[:, hq * d:(hq + 1) * d], k[:, hk * d:(hk + 1) * d], v[:, hk * d:(hk + 1) * d]
                if self.qk_norm:
                    qh = rms_norm(qh, w[p + "self_attn.q_norm.weight"], eps, g)
                    kh = rms_norm(kh, w[p + "self_attn.k_norm.weight"], eps, g)
                qh, kh = rotate(qh, inv, cos_sin_scale), rotate(kh, inv, cos_sin_scale)
                s = (qh @ kh.T) * scale
                if attn_cap is not None:
                    s = np.tanh(s / attn_cap) * attn_cap
                for i in range(T):
                    for j in range(T):
                        if j > i or (window is not None and i - j >= window):
                            s[i, j] = -np.inf
                s = np.exp(s - s.max(1, keepdims=True))
                s = s / s.sum(1, keepdims=True)
                heads.append(s @ vh)
            attn = np.concatenate(heads, 1) @ w[p + "self_attn.o_proj.weight"].T
            if g:
                x = x + rms_norm(attn, w[p + "post_attention_layernorm.weight"], eps, True)
                m_in = rms_norm(x, w[p + "pre_feedforward_layernorm.weight"], eps, True)
            else:
                x = x + attn
                m_in = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps, False)
            gate = m_in @ w[p + "mlp.gate_proj.weight"].T
            act = gelu_tanh(gate) if g else silu(gate)
            mlp = (act * (m_in @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
            x = x + (rms_norm(mlp, w[p + "post_feedforward_layernorm.weight"], eps, True) if g else mlp)
        x = rms_norm(x, w["model.norm.weight"], eps, g)
        head = w["model.embed_tokens.weight"] if self.tied else w["lm_head.weight"]
        logits = x @ head.T
        cap = c.get("final_logit_softcapping") if g else None
        if cap is not None:
            logits = np.tanh(logits / cap) * cap
        return logits


def loss_of(all_logits):
    total, count = 0.0, 0
    for ids, logits in zip(IDS, all_logits):
        for t in range(len(ids) - 1):
            row = logits[t]
            lse = row.max() + math.log(np.exp(row - row.max()).sum())
            total += lse - row[ids[t + 1]]
            count += 1
    return total / count


BASE = dict(hidden_size=16, intermediate_size=24, num_attention_heads=4, num_key_value_heads=2, vocab_size=48,
            max_position_embeddings=64, rms_norm_eps=1e-6)

FAMILIES = [
    # Mistral-Nemo style: explicit head_dim (not hidden / heads) and a window shorter than the sequence.
    Family("mistral-window", dict(BASE, model_type="mistral", architectures=["MistralForCausalLM"], num_hidden_layers=2,
                                  head_dim=12, sliding_window=4, rope_theta=1000000.0, tie_word_embeddings=False), tied=False),
    Family("qwen3", dict(BASE, model_type="qwen3", architectures=["Qwen3ForCausalLM"], num_hidden_layers=2, head_dim=12,
                         rope_theta=1000000.0, tie_word_embeddings=True, attention_bias=False, use_sliding_window=False),
           tied=True, qk_norm=True),
    Family("llama-3.2", dict(BASE, model_type="llama", architectures=["LlamaForCausalLM"], num_hidden_layers=2,
                             rope_theta=500000.0, tie_word_embeddings=True,
                             rope_scaling=dict(factor=32.0, high_freq_factor=4.0, low_freq_factor=1.0,
                                               original_max_position_embeddings=8192, rope_type="llama3")), tied=True),
    Family("gemma2", dict(BASE, model_type="gemma2", architectures=["Gemma2ForCausalLM"], num_hidden_layers=2, head_dim=12,
                          hidden_act="gelu_pytorch_tanh", hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=10,
                          sliding_window=4, attn_logit_softcapping=2.0, final_logit_softcapping=3.0, rope_theta=10000.0,
                          tie_word_embeddings=True, layer_types=["sliding_attention", "full_attention"]), tied=True, gemma=True),
    Family("gemma3", dict(BASE, model_type="gemma3_text", architectures=["Gemma3ForCausalLM"], num_hidden_layers=3, head_dim=12,
                          hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=12, sliding_window=4,
                          attn_logit_softcapping=None, final_logit_softcapping=None, rope_theta=1000000.0,
                          rope_local_base_freq=10000.0, rope_scaling=dict(factor=8.0, rope_type="linear"),
                          tie_word_embeddings=True,
                          layer_types=["sliding_attention", "sliding_attention", "full_attention"]),
           tied=True, qk_norm=True, gemma=True),
]

# Phi-3: fused qkv_proj / gate_up_proj, 3/4 of each 8-wide head rotated (as Phi-4-mini), longrope with made-up factors.
PHI3 = dict(BASE, model_type="phi3", architectures=["Phi3ForCausalLM"], hidden_size=32, num_attention_heads=4,
            num_key_value_heads=2, num_hidden_layers=2, rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
            partial_rotary_factor=0.75, embd_pdrop=0.0, resid_pdrop=0.0, hidden_act="silu",
            rope_scaling=dict(type="longrope", short_factor=[1.0, 1.25, 2.5], long_factor=[1.5, 4.0, 9.0]))
FAMILIES += [
    # The 10-token rows fit the original context of 16: short factors, cos/sin × √(1 + ln 4 / ln 16).
    Family("phi3", dict(PHI3, original_max_position_embeddings=16, sliding_window=None), tied=False, fused=True),
    # The rows exceed the original context of 8: long factors, × √(1 + ln 8 / ln 8); every layer windowed to 6 keys.
    Family("phi3-long", dict(PHI3, original_max_position_embeddings=8, sliding_window=6), tied=False, fused=True),
]


def main():
    for i, fam in enumerate(FAMILIES):
        folder = os.path.join(HERE, fam.name)
        os.makedirs(folder, exist_ok=True)
        rng = np.random.default_rng(1000 + i)
        weights = fam.tensors(rng)
        write_safetensors(os.path.join(folder, "model.safetensors"), weights)
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(fam.config, f, indent=2, sort_keys=True)
            f.write("\n")
        logits = [fam.forward(weights, np.array(ids)) for ids in IDS]
        expected = {"ids": IDS, "logits": [lg.round(7).tolist() for lg in logits], "loss": loss_of(logits)}
        with open(os.path.join(folder, "expected.json"), "w") as f:
            json.dump(expected, f)
        print(f"{fam.name}: loss {expected['loss']:.6f}, max |logit| {max(abs(lg).max() for lg in logits):.3f}")


if __name__ == "__main__":
    main()
