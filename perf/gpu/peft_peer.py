#!/usr/bin/env python3
"""The peer of QuantPeft's bf16 LoRA step: Hugging Face transformers + PEFT on the same GPU and shape.

A randomly initialised Llama of the TinyLlama-1.1B shape in bf16, LoRA on all seven projections, AdamW, batch 1 of
--seq tokens; a few warm-up steps, then --steps timed steps. Writes tokens/s and the peak allocated memory as JSON.
When transformers or peft is not installed it writes {"skipped": ...} and exits 0, so the check goes on.
"""
import argparse, json, sys, time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--checkpointing", action="store_true")
    a = ap.parse_args()
    result = {"seq": a.seq, "batch": 1, "rank": a.rank, "alpha": 2 * a.rank, "checkpointing": a.checkpointing,
              "shape": "tinyllama-1.1b (22 layers, hidden 2048, intermediate 5632, 32 heads, 4 kv heads, vocab 32000)"}
    try:
        import transformers, peft
        from transformers import LlamaConfig, LlamaForCausalLM
        from peft import LoraConfig, get_peft_model
    except ImportError as e:
        result["skipped"] = f"transformers/peft not installed ({e})"
        json.dump(result, open(a.out, "w"), indent=2)
        print(json.dumps(result))
        return
    if not torch.cuda.is_available():
        result["skipped"] = "no CUDA device"
        json.dump(result, open(a.out, "w"), indent=2)
        return
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
                         num_key_value_heads=4, vocab_size=32000, max_position_embeddings=2048, rms_norm_eps=1e-5,
                         attn_implementation="sdpa", torch_dtype=torch.bfloat16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    if a.checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    model = get_peft_model(model, LoraConfig(r=a.rank, lora_alpha=2 * a.rank, lora_dropout=0.0,
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(0, 32000, (1, a.seq), device="cuda")
    torch.cuda.reset_peak_memory_stats()

    def step():
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    for _ in range(a.warmup):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    result.update({
        "transformers": transformers.__version__, "peft": peft.__version__, "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0), "steps": a.steps, "seconds": round(seconds, 3),
        "tokens_per_s": round(a.steps * a.seq / seconds, 1), "step_ms": round(1000 * seconds / a.steps, 2),
        "max_memory_allocated_bytes": torch.cuda.max_memory_allocated(), "last_loss": round(loss.item(), 4),
    })
    json.dump(result, open(a.out, "w"), indent=2)
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
