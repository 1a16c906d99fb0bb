#!/usr/bin/env python3
"""Loss parity of a QuantPeft-written model folder read by another implementation.

RUN is a `qpeft train` run of the demo task (byte-level tokenizer) with a LoRA on a bf16 base; MERGED is
`qpeft export RUN --merge`. The eval loss of MERGED over RUN's eval records, computed here by Hugging Face
transformers when it is installed (else by the small Llama forward below, written from the published architecture),
must match the run's own "eval after" loss in report.md: mean cross-entropy over completion tokens and EOS.
The adapter is added to the weights in the merged folder (rounded to bf16), so the two differ by rounding only.
Prints one JSON line and exits 1 when the relative difference exceeds --tolerance.
"""
import argparse, json, math, os, re, struct, sys

import torch
import torch.nn.functional as F

BOS, EOS = 256, 257


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    dtypes = {"BF16": torch.bfloat16, "F32": torch.float32, "F16": torch.float16, "I64": torch.int64}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=dtypes[info["dtype"]]) if b > a else torch.empty(0, dtype=dtypes[info["dtype"]])
        out[name] = t.reshape(info["shape"])
    return out


def load_weights(folder):
    index = os.path.join(folder, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    weights = {}
    for f in files:
        weights.update(read_safetensors(os.path.join(folder, f)))
    return weights


class ReferenceLlama:
    """Llama forward (RMSNorm, rotary, grouped-query attention, SwiGLU) in float32 over bf16 weights."""

    def __init__(self, folder, device):
        self.c = json.load(open(os.path.join(folder, "config.json")))
        self.w = {k: v.to(device=device, dtype=torch.float32) for k, v in load_weights(folder).items()}
        self.device = device

    def norm(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.c["rms_norm_eps"]) * w

    def __call__(self, ids):
        c, w = self.c, self.w
        h, nh, nkv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
        d = c.get("head_dim") or h // nh
        B, T = ids.shape
        x = w["model.embed_tokens.weight"][ids]
        inv = 1.0 / (c.get("rope_theta", 10000.0) ** (torch.arange(0, d, 2, device=self.device, dtype=torch.float32) / d))
        ang = torch.outer(torch.arange(T, device=self.device, dtype=torch.float32), inv)
        cos, sin = torch.cat([ang, ang], -1).cos(), torch.cat([ang, ang], -1).sin()

        def rope(t):
            t1, t2 = t[..., : d // 2], t[..., d // 2:]
            return t * cos + torch.cat([-t2, t1], -1) * sin

        mask = torch.full((T, T), float("-inf"), device=self.device).triu(1)
        for i in range(c["num_hidden_layers"]):
            p = f"model.layers.{i}."
            a = self.norm(x, w[p + "input_layernorm.weight"])
            q = (a @ w[p + "self_attn.q_proj.weight"].T).view(B, T, nh, d).transpose(1, 2)
            k = (a @ w[p + "self_attn.k_proj.weight"].T).view(B, T, nkv, d).transpose(1, 2)
            v = (a @ w[p + "self_attn.v_proj.weight"].T).view(B, T, nkv, d).transpose(1, 2)
            q, k = rope(q), rope(k)
            k, v = k.repeat_interleave(nh // nkv, 1), v.repeat_interleave(nh // nkv, 1)
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + mask, -1) @ v
            x = x + att.transpose(1, 2).reshape(B, T, nh * d) @ w[p + "self_attn.o_proj.weight"].T
            m = self.norm(x, w[p + "post_attention_layernorm.weight"])
            g = F.silu(m @ w[p + "mlp.gate_proj.weight"].T) * (m @ w[p + "mlp.up_proj.weight"].T)
            x = x + g @ w[p + "mlp.down_proj.weight"].T
        x = self.norm(x, w["model.norm.weight"])
        head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
        return x @ head.T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("merged")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tolerance", type=float, default=0.01)
    ap.add_argument("--reference", action="store_true", help="use the built-in forward even when transformers is installed")
    a = ap.parse_args()

    report = open(os.path.join(a.run, "report.md")).read()
    qpeft_loss = float(re.search(r"^\| after \| ([0-9.]+) \|", report, re.M).group(1))
    records = [json.loads(l) for l in open(os.path.join(a.run, "data", "finetune-eval.jsonl")) if l.strip()]

    impl = "reference"
    model = None
    if not a.reference:
        try:
            from transformers import AutoModelForCausalLM
            model = AutoModelForCausalLM.from_pretrained(a.merged, torch_dtype=torch.bfloat16).to(a.device).eval()
            impl = "transformers"
        except ImportError:
            model = None
    if model is None:
        model = ReferenceLlama(a.merged, a.device)

    total, count = 0.0, 0
    with torch.no_grad():
        for r in records:
            prompt = list(r["prompt"].encode("utf-8"))
            completion = list(r["completion"].encode("utf-8")) + [EOS]
            ids = torch.tensor([[BOS] + prompt + completion], device=a.device)
            logits = model(ids).logits if impl == "transformers" else model(ids)
            first = 1 + len(prompt)  # position of the first completion token
            pred = logits[0, first - 1: ids.shape[1] - 1].float()
            total += F.cross_entropy(pred, ids[0, first:], reduction="sum").item()
            count += len(completion)
    loss = total / count
    rel = abs(loss - qpeft_loss) / qpeft_loss
    result = {"implementation": impl, "device": a.device, "records": len(records), "target_tokens": count,
              "qpeft_eval_loss": qpeft_loss, "merged_eval_loss": round(loss, 4), "relative_difference": round(rel, 5),
              "tolerance": a.tolerance, "ok": rel <= a.tolerance}
    print(json.dumps(result))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
